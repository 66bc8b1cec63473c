"""The one model class: a transform (a :class:`~flowgen.flows.Flow`) and a base distribution."""

from __future__ import annotations

import copy
import functools
import inspect
import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from flowgen.distributions import Distribution
from flowgen.distributions.base import Temperature, check_sample_count, check_temperature
from flowgen.flows import Flow
from flowgen.flows.multiscale import MultiScale
from flowgen.models.folder import FORMAT_VERSION, write_model_folder


class FlowModel(nn.Module):
    """``x -> z = transform(x)``, ``log p(x) = base.log_prob(z) + log|det dz/dx|``.

    For any event shape: images ``[B, C, H, W]``, vectors ``[B, D]``. ``encode`` returns the
    latents as a list, one per level of a :class:`~flowgen.flows.MultiScale` transform (one
    element otherwise), and ``decode`` takes that list back, so every sampling mode works on
    every model. ``head`` (optional) reads the transform's features (a class head).

    Subclasses build ``transform``, ``base`` and ``head`` from their constructor arguments and set
    ``arch`` (their name in :data:`flowgen.models.MODELS`); the arguments they were built with
    are recorded in ``config`` by themselves (plain values), so a checkpoint rebuilds the model
    exactly.
    """

    arch: str = ""

    def __init__(self, transform: Flow, base: Distribution,
                 event_shape: Sequence[int] | None = None, head: nn.Module | None = None,
                 num_classes: int = 0):
        super().__init__()
        self.transform = transform
        self.base = base
        self.head = head
        self.num_classes = num_classes
        self.event_shape = tuple(event_shape or base.event_shape)
        self.config: dict = getattr(self, "config", {})

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _records_config(cls.__init__)

    def save_pretrained(self, directory, n_bits: int | None = None):
        """Write this model to ``directory``: architecture and constructor arguments in
        ``config.json``, weights in ``model.safetensors``; ``n_bits`` (default: the model's own,
        if loaded with one) is the bit depth of its images. :func:`flowgen.from_pretrained`
        reads it back."""
        if not self.arch:
            raise ValueError(f"{type(self).__name__} has no arch name: only registered models "
                             f"(flowgen.models.MODELS) can be saved and rebuilt")
        n_bits = getattr(self, "n_bits", None) if n_bits is None else n_bits
        record = {"format": FORMAT_VERSION, "arch": self.arch, "config": self.config,
                  "n_bits": n_bits}
        return write_model_folder(directory, record, self.state_dict())

    # -- shapes -------------------------------------------------------------------------------
    @property
    def num_dims(self) -> int:
        """Dimensions ``D`` of one sample (``C H W`` for images)."""
        return math.prod(self.event_shape)

    @property
    def in_shape(self) -> tuple[int, ...]:
        return self.event_shape

    @property
    def latent_shapes(self) -> list[tuple[int, ...]]:
        if isinstance(self.transform, MultiScale):
            return self.transform.latent_shapes
        return [self.base.event_shape]

    def _check_input(self, x: Tensor) -> None:
        if tuple(x.shape[1:]) != self.event_shape:
            raise ValueError(f"{type(self).__name__} was built for samples of shape "
                             f"{self.event_shape}, got a batch of shape {tuple(x.shape)}: resize "
                             f"the data or rebuild the model for its shape")

    def _levels(self, z: Tensor) -> list[Tensor]:
        return self.transform.unflatten(z) if isinstance(self.transform, MultiScale) else [z]

    def _joined(self, zs: Sequence[Tensor]) -> Tensor:
        if isinstance(self.transform, MultiScale):
            return self.transform.flatten(zs)
        if len(zs) != 1:
            raise ValueError(f"expected 1 latent, got {len(zs)}")
        return zs[0]

    # -- density ------------------------------------------------------------------------------
    def forward_features(self, x: Tensor, cond: Tensor | None = None
                         ) -> tuple[list[Tensor], Tensor, Tensor]:
        """Data -> (latents per level, ``log|det dz/dx|`` ``[B]``, features): the features feed
        auxiliary heads (a multi-scale transform's top activation, else the latent)."""
        self._check_input(x)
        if isinstance(self.transform, MultiScale):
            return self.transform.forward_features(x, cond)
        z, logdet = self.transform(x, cond)
        return [z], logdet, z

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[list[Tensor], Tensor]:
        """Data -> (latents per level, ``log|det dz/dx|`` ``[B]``)."""
        zs, logdet, _ = self.forward_features(x, cond)
        return zs, logdet

    def inverse(self, zs: Sequence[Tensor], cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Latents per level -> (data, ``log|det dx/dz|`` ``[B]``)."""
        if self.transform.inverse_kind == "none":  # a declared capability, read, not tried
            raise ValueError(f"{type(self).__name__} has a layer without an inverse: it gives "
                             f"densities but cannot decode or sample")
        return self.transform.inverse(self._joined(zs), cond)

    def latent_log_prob(self, zs: Sequence[Tensor], cond: Tensor | None = None) -> Tensor:
        """``log p(z)`` under the base of the latents of all levels, ``[B]``."""
        return self.base.log_prob(self._joined(zs), cond)

    def log_prob(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """``log p(x | cond)`` in nats, ``[B]``, for ``x`` the continuous data."""
        return self.log_prob_and_features(x, cond)[0]

    def log_prob_and_features(self, x: Tensor, cond: Tensor | None = None
                              ) -> tuple[Tensor, Tensor]:
        """``(log p(x) [B], features)`` (see :meth:`forward_features`)."""
        zs, logdet, features = self.forward_features(x, cond)
        return self.latent_log_prob(zs, cond) + logdet, features

    def class_logits(self, features: Tensor) -> Tensor:
        """Class scores ``[B, num_classes]`` from :meth:`log_prob_and_features`'s features."""
        if self.head is None:
            raise ValueError(f"this {type(self).__name__} has no class head: build it with "
                             f"num_classes > 0")
        return self.head(features)

    # -- latents ------------------------------------------------------------------------------
    def encode(self, x: Tensor, cond: Tensor | None = None) -> list[Tensor]:
        """Data -> latents, one ``[B, *latent_shapes[i]]`` per level."""
        return self(x, cond)[0]

    def decode(self, zs: Sequence[Tensor], cond: Tensor | None = None) -> Tensor:
        """Latents (one per level) -> data ``[B, *event_shape]``."""
        return self.inverse(zs, cond)[0]

    def prior_noise(self, n: int, generator: torch.Generator | None = None,
                    device: torch.device | str | None = None,
                    dtype: torch.dtype | None = None) -> list[Tensor]:
        """Latents from the base at temperature 1, one ``[n, *shape]`` per level, on the
        model's device and dtype unless given (e.g. drawn on the CPU in float32, so a seed gives
        the same noise on every device)."""
        base = self.base
        if device is not None or dtype is not None:
            base = copy.deepcopy(base).to(device=device, dtype=dtype)  # a base is small
        return self._levels(base.sample(n, generator=generator))

    def sample_latents(self, n: int, temperature: Temperature | Sequence[float] = 1.0,
                       generator: torch.Generator | None = None,
                       cond: Tensor | None = None) -> list[Tensor]:
        """Latents drawn at ``temperature`` (one number, or one per level), one per level."""
        check_sample_count(n)
        return self._levels(self.base.sample(n, cond, self._temperature(temperature),
                                             generator))

    def _temperature(self, temperature: Temperature | Sequence[float]) -> Temperature:
        if isinstance(temperature, (int, float, Tensor)):
            return temperature
        per_level = list(temperature)
        shapes = self.latent_shapes
        if len(per_level) != len(shapes):
            raise ValueError(f"one temperature per level: {len(shapes)}, got {len(per_level)}")
        for t in per_level:
            check_temperature(t)
        like = self.base._anchor
        return self._joined([like.new_full((1, *shape), float(t))
                             for t, shape in zip(per_level, shapes, strict=True)])

    @torch.no_grad()
    def sample(self, n: int, cond: Tensor | None = None,
               temperature: Temperature | Sequence[float] = 1.0,
               generator: torch.Generator | None = None) -> Tensor:
        """``n`` samples ``[n, *event_shape]`` in model space (images: about ``[-0.5, 0.5]``)."""
        if cond is not None and (not isinstance(cond, Tensor) or cond.shape[0] != n):
            raise ValueError(f"cond must be a tensor with one entry per sample ({n}), got "
                             f"{cond if not isinstance(cond, Tensor) else tuple(cond.shape)}"
                             f" (temperature and generator are keyword arguments)")
        return self.decode(self.sample_latents(n, temperature, generator, cond), cond)


def _records_config(init):
    """Wrap a :class:`FlowModel` subclass's ``__init__`` so that the model records the
    arguments it was built with (defaults included) in ``config``."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapped(self, *args, **kwargs):
        init(self, *args, **kwargs)
        if type(self).__init__ is wrapped:  # the class built: its own arguments, not a parent's
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            self.config = {name: _plain(value) for name, value in bound.arguments.items()
                           if name != "self"}

    return wrapped


def _plain(value):
    if isinstance(value, Sequence) and not isinstance(value, str):  # tuples, Hydra's ListConfig
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"model arguments must be plain values to be recorded, got {value!r}")


class ClassHead(nn.Linear):
    """Class scores from features: ``[B, C, H, W]`` averaged over ``H, W`` (or ``[B, C]``) ->
    ``[B, num_classes]`` (Glow's ``y`` head on the top activation)."""

    def forward(self, features: Tensor) -> Tensor:
        return super().forward(features.mean((2, 3)) if features.dim() == 4 else features)


def check_sampling_args(n: int, temperature: float) -> None:
    """A ``ValueError`` unless ``n`` is a positive integer and ``temperature`` a finite ``>= 0``."""
    check_sample_count(n)
    check_temperature(temperature)


def image_shape(event_shape: Sequence[int], model: str) -> tuple[int, int]:
    """``(channels, size)`` of square images of ``event_shape`` ``(C, H, W)``, or a clear error."""
    shape = tuple(event_shape)
    if len(shape) != 3 or shape[1] != shape[2]:
        raise ValueError(f"{model} models square images (C, H, W), the data has samples of shape "
                         f"{shape}: pick an image dataset or a vector model (model=coupling_mlp)")
    return int(shape[0]), int(shape[1])
