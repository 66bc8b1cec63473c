"""Multi-scale flows (Dinh et al. 2017): a latent is factored out at every level."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from flowgen.flows import Flow, FlowSequence, Split, Squeeze

LOG_2PI = math.log(2 * math.pi)


class MultiScaleFlow(nn.Module):
    """Images ``[B, C, H, W]`` (scaled to ``[-0.5, 0.5]``) <-> one standard-normal latent per level.

    ``levels[i]`` is a flow; every level but the last ends in a :class:`Split`, whose second part
    of the output is that level's latent ``zs[i]`` and whose first part goes on to the next level.
    The last level's whole output is the top latent. Every latent is ``N(0, I)`` under the model
    (the priors are folded into the flow), so ``log p(x) = log N(zs; 0, I) + logdet`` and sampling
    at temperature ``T`` draws ``zs ~ N(0, T^2 I)``.

    ``top_prior`` (optional) is a flow applied to the last level's output, kept apart so that
    :meth:`forward_features` can also return the top activation before it (e.g. for a class
    head). Subclasses build the levels and set ``config`` (their constructor arguments, plain
    types) and ``arch`` (their name in :data:`flowgen.models.MODELS`) so checkpoints can rebuild
    them.
    """

    arch: str = ""

    def __init__(self, levels: Sequence[FlowSequence], in_shape: tuple[int, int, int],
                 top_prior: Flow | None = None):
        super().__init__()
        self.levels = nn.ModuleList(levels)
        self.top_prior = top_prior
        self.in_shape = tuple(in_shape)
        self.config: dict = {}
        self.latent_shapes = self._trace_latent_shapes()

    def _trace_latent_shapes(self) -> list[tuple[int, int, int]]:
        shapes = []
        with torch.no_grad():
            x = torch.zeros(1, *self.in_shape)
            for i, level in enumerate(self.levels):
                for flow in level.flows:  # only squeezes change shapes; skip the costly rest
                    if isinstance(flow, Squeeze):
                        x, _ = flow(x)
                if i < len(self.levels) - 1:
                    split = level.flows[-1]
                    if not isinstance(split, Split):
                        raise TypeError(f"level {i} must end in a Split: {type(split).__name__}")
                    shapes.append((x.shape[1] - split.kept, *x.shape[2:]))
                    x = x[:, :split.kept]
                else:
                    shapes.append(tuple(x.shape[1:]))
        return shapes

    @property
    def num_dims(self) -> int:
        """Dimensions ``D = C * H * W`` of one image."""
        return math.prod(self.in_shape)

    def _check_input(self, x: Tensor) -> None:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.in_shape:
            c, h, w = self.in_shape
            raise ValueError(f"{type(self).__name__} was built for images [B, {c}, {h}, {w}], got "
                             f"{tuple(x.shape)}: resize the data or rebuild the model with "
                             f"in_channels/image_size matching it")

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[list[Tensor], Tensor]:
        """Data ``[B, C, H, W]`` -> (latents per level, ``log|det dz/dx|`` ``[B]``)."""
        zs, logdet, _ = self.forward_features(x, cond)
        return zs, logdet

    def forward_features(self, x: Tensor, cond: Tensor | None = None
                         ) -> tuple[list[Tensor], Tensor, Tensor]:
        """As :meth:`forward`, plus the top activation before the top prior ``[B, C', H', W']``."""
        self._check_input(x)
        zs, logdet = [], x.new_zeros(x.shape[0])
        last = len(self.levels) - 1
        for i, level in enumerate(self.levels):
            x, ld = level(x, cond)
            logdet = logdet + ld
            if i < last:
                kept = level.flows[-1].kept
                zs.append(x[:, kept:])
                x = x[:, :kept]
        top = x
        if self.top_prior is not None:
            x, ld = self.top_prior(x, cond)
            logdet = logdet + ld
        zs.append(x)
        return zs, logdet, top

    def log_prob_and_features(self, x: Tensor, cond: Tensor | None = None
                              ) -> tuple[Tensor, Tensor]:
        """``(log p(x) [B], features)``: the features (here the top activation before the top
        prior) feed auxiliary heads such as Glow's class head."""
        zs, logdet, top = self.forward_features(x, cond)
        return self.latent_log_prob(zs) + logdet, top

    def inverse(self, zs: Sequence[Tensor], cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Latents per level -> (data ``[B, C, H, W]``, ``log|det dx/dz|`` ``[B]``)."""
        if len(zs) != len(self.levels):
            raise ValueError(f"expected {len(self.levels)} latents (one per level), got {len(zs)}")
        for z, shape in zip(zs, self.latent_shapes, strict=True):
            if tuple(z.shape[1:]) != shape:
                raise ValueError(f"latent of shape {tuple(z.shape[1:])} where {shape} is needed")
        x = zs[-1]
        logdet = x.new_zeros(x.shape[0])
        if self.top_prior is not None:
            x, logdet = self.top_prior.inverse(x, cond)
        for i in reversed(range(len(self.levels))):
            if i < len(self.levels) - 1:
                x = torch.cat([x, zs[i]], 1)
            x, ld = self.levels[i].inverse(x, cond)
            logdet = logdet + ld
        return x, logdet

    def encode(self, x: Tensor, cond: Tensor | None = None) -> list[Tensor]:
        return self(x, cond)[0]

    def decode(self, zs: Sequence[Tensor], cond: Tensor | None = None) -> Tensor:
        return self.inverse(zs, cond)[0]

    def log_prob(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """``log p(x)`` in nats, ``[B]``, for ``x`` the continuous (dequantised, scaled) image."""
        zs, logdet = self(x, cond)
        return self.latent_log_prob(zs) + logdet

    def latent_log_prob(self, zs: Sequence[Tensor]) -> Tensor:
        """``log N(zs; 0, I)`` summed over all levels, ``[B]``."""
        return sum(-0.5 * (z.flatten(1).pow(2).sum(1) + z[0].numel() * LOG_2PI) for z in zs)

    def sample_latents(self, n: int, temperature: float = 1.0,
                       generator: torch.Generator | None = None) -> list[Tensor]:
        """``zs ~ N(0, temperature^2 I)``, one ``[n, *shape]`` tensor per level."""
        check_sampling_args(n, temperature)
        return [temperature * z for z in self.prior_noise(n, generator)]

    def prior_noise(self, n: int, generator: torch.Generator | None = None,
                    device: torch.device | str | None = None,
                    dtype: torch.dtype | None = None) -> list[Tensor]:
        """Latents from the prior at temperature 1, one ``[n, *shape]`` per level (on the
        model's device and dtype unless given). Models with another prior override this."""
        p = next(self.parameters())
        return [torch.randn(n, *shape, generator=generator,
                            device=p.device if device is None else device,
                            dtype=p.dtype if dtype is None else dtype)
                for shape in self.latent_shapes]

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, cond: Tensor | None = None,
               generator: torch.Generator | None = None) -> Tensor:
        """``n`` images ``[n, C, H, W]`` in model space (about ``[-0.5, 0.5]``)."""
        if cond is not None and cond.shape[0] != n:
            raise ValueError(f"cond must hold one label per sample: {n}, got {cond.shape[0]}")
        return self.decode(self.sample_latents(n, temperature, generator), cond)


def check_sampling_args(n: int, temperature: float) -> None:
    if not isinstance(n, int) or n <= 0:
        raise ValueError(f"number of samples must be a positive integer, got {n!r}")
    if not isinstance(temperature, (int, float)) or not math.isfinite(temperature) \
            or temperature < 0:
        raise ValueError(f"temperature must be a finite number >= 0 (typically 0.5-1.0), "
                         f"got {temperature!r}")


def image_shape(event_shape, model: str) -> tuple[int, int]:
    """``(channels, size)`` of square images of ``event_shape`` ``(C, H, W)``, or a clear error."""
    shape = tuple(event_shape)
    if len(shape) != 3 or shape[1] != shape[2]:
        raise ValueError(f"{model} models square images (C, H, W), the data has samples of shape "
                         f"{shape}: pick an image dataset or a vector model (model=coupling_mlp)")
    return int(shape[0]), int(shape[1])
