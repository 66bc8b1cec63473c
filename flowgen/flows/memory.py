"""Training a flow without storing its activations.

A flow is invertible, so the input of every layer can be recomputed from the layer's output
during the backward pass (Gomez et al. 2017, "The Reversible Residual Network"): a sequence of
flows run through :func:`invertible_forward` keeps only its final output, and activation memory
no longer grows with the number of layers. :func:`checkpointed_forward` is the simpler
alternative: gradient checkpointing per layer (each layer's input is kept, its internals are
recomputed).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from flowgen.flows.base import Flow, compose

#: ``memory=`` choices of :class:`~flowgen.flows.FlowSequence` (the training config's ``memory``).
MEMORY_MODES = ("store", "checkpoint", "invertible")


def check_invertible_in_training(flow: Flow) -> None:
    """A one-line ``ValueError`` unless ``flow`` can be trained with ``memory=invertible``: its
    inverse must be analytic and undo its training-mode forward (read from its capabilities)."""
    name = type(flow).__name__
    if flow.inverse_kind != "analytic":
        raise ValueError(f"{name} has no analytic inverse ({flow.inverse_kind}): memory="
                         f"invertible cannot recompute its input; use memory=store or checkpoint")
    if not flow.invertible_in_training:
        raise ValueError(f"{name} is not invertible in training mode (batch statistics): train "
                         f"it with memory=store or memory=checkpoint")


def invertible_forward(flows: Sequence[Flow], x: Tensor, cond: Tensor | None
                       ) -> tuple[Tensor, Tensor]:
    """``flows`` applied in order to ``x`` -> ``(y, logdet)``, as one autograd node that keeps
    only ``y`` and recomputes every layer's input by inversion in backward.

    Exact up to floating-point rounding of the reconstruction (the tests hold gradients to 1e-10
    in float64, 1e-5 in float32). Layers must be exact inverses in training mode (no batch
    statistics). Under bf16 autocast the coupling networks' outputs are rounded to bf16, so the
    reconstruction, and with it the gradients, carry bf16-sized errors (~1e-3).
    """
    for flow in flows:
        check_invertible_in_training(flow)
    params = [p for flow in flows for p in flow.parameters() if p.requires_grad]
    return _InvertibleBackprop.apply(x, cond, tuple(flows), *params)


def checkpointed_forward(flows: Sequence[Flow], x: Tensor, cond: Tensor | None
                         ) -> tuple[Tensor, Tensor]:
    """``flows`` applied in order, each under gradient checkpointing: only the layer inputs are
    stored, everything inside a layer (the coupling networks' hidden activations) is recomputed."""
    return compose(flows, x, cond,
                   lambda flow, x, cond: checkpoint(flow, x, cond, use_reentrant=False))


class _InvertibleBackprop(torch.autograd.Function):
    """``forward(x, cond, flows, *params) -> (y, logdet)``; the parameters are inputs
    so that autograd (and DDP's gradient hooks) see their gradients as ordinary outputs of
    backward, never as side effects."""

    @staticmethod
    def forward(ctx, x, cond, flows, *params):
        with torch.no_grad():
            x, logdet = compose(flows, x, cond)
        ctx.flows, ctx.cond = flows, cond
        # Backward runs outside autocast: recompute under the forward's autocast state.
        device = x.device.type
        ctx.autocast = (device, torch.get_autocast_dtype(device),
                        torch.is_autocast_enabled(device))
        ctx.save_for_backward(x)
        return x, logdet

    @staticmethod
    def backward(ctx, grad_y, grad_logdet):
        y = ctx.saved_tensors[0].detach()  # a plain tensor: the walk back is outside autograd
        flows, cond = ctx.flows, ctx.cond
        # A float cond (a context) that needs a gradient: a leaf every layer's graph shares.
        wants_cond = ctx.needs_input_grad[1]
        if wants_cond:
            cond = cond.detach().requires_grad_()
        if grad_logdet is None:
            grad_logdet = torch.zeros(y.shape[0], dtype=y.dtype, device=y.device)
        if grad_y is None:
            grad_y = torch.zeros_like(y)
        param_grads: list[Tensor | None] = []
        grad_cond = None
        device, dtype, enabled = ctx.autocast
        for flow in reversed(flows):
            params = [p for p in flow.parameters() if p.requires_grad]
            with torch.enable_grad(), torch.autocast(device, dtype, enabled=enabled):
                leaves, y_again, ld = flow.reconstruct(y, cond)
                pairs = [(out, g) for out, g in ((y_again, grad_y), (ld, grad_logdet))
                         if out.requires_grad]  # e.g. a Squeeze's logdet is a constant 0
                inputs = [*leaves, *params, *([cond] if wants_cond else [])]
                grads = torch.autograd.grad([o for o, _ in pairs], inputs,
                                            [g for _, g in pairs], allow_unused=True)
            n = len(leaves)
            leaf_grads = [torch.zeros_like(leaf) if g is None else g
                          for leaf, g in zip(leaves, grads[:n], strict=True)]
            grad_y = torch.cat(leaf_grads, 1) if n > 1 else leaf_grads[0]
            y = torch.cat([leaf.detach() for leaf in leaves], 1) if n > 1 else leaves[0].detach()
            param_grads[:0] = grads[n:n + len(params)]  # reversed walk: prepend, forward order
            if wants_cond and grads[-1] is not None:
                grad_cond = grads[-1] if grad_cond is None else grad_cond + grads[-1]
        return (grad_y, grad_cond, None, *param_grads)
