"""Sample quality beyond bits/dim: Fréchet Inception Distance (Heusel et al. 2017) with
torchmetrics, on features from a local Inception-v3 file (no download at run time) or any
feature extractor (the tests use a small fixed network, so they need no weights).

Images are uint8 ``[N, C, H, W]``; greyscale is repeated to 3 channels.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance

INCEPTION_SIZE = 299
#: ImageNet statistics torchvision's Inception-v3 weights expect.
_MEAN, _STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class InceptionFeatures(nn.Module):
    """uint8 images ``[N, 3, H, W]`` -> the 2048 pool features of torchvision's Inception-v3,
    its weights read from ``weights`` (a state dict saved by torch, loaded with
    ``weights_only=True``): e.g. ``inception_v3_google-0cc3c7bd.pth`` from torchvision's model
    zoo, downloaded once by hand (``sample.py mode=fid inception_weights=<path>``)."""

    num_features = 2048

    def __init__(self, weights: str | Path):
        super().__init__()
        from torchvision.models.inception import Inception3

        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"Inception weights not found: {path}. FID needs them locally (no download at "
                f"run time): put torchvision's inception_v3_google-0cc3c7bd.pth there, or give "
                f"inception_weights=<path>")
        net = Inception3(aux_logits=False, init_weights=False)
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith("AuxLogits.")}
        net.load_state_dict(state)
        net.fc = nn.Identity()
        self.net = net.eval()
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        x = images.float() / 255.0
        x = nn.functional.interpolate(x, size=(INCEPTION_SIZE, INCEPTION_SIZE),
                                      mode="bilinear", align_corners=False)
        return self.net((x - self.mean) / self.std)


class StandInFeatures(nn.Module):
    """A small fixed random convolutional network, uint8 ``[N, 3, H, W]`` -> ``[N, 32]``: FID's
    arithmetic exercised without Inception weights (tests, smoke runs). Seeded: the same
    features in every process."""

    num_features = 32

    def __init__(self, seed: int = 0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv2d(3, self.num_features, 3, stride=2)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=generator) / 5)
            self.conv.bias.zero_()

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        return torch.tanh(self.conv(images.float() / 127.5 - 1)).mean((2, 3))


def _rgb(images: Tensor) -> Tensor:
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"FID takes uint8 images [N, 1 or 3, H, W], got {images.dtype} "
                         f"{tuple(images.shape)}")
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def frechet_distance(real: Iterable[Tensor], fake: Iterable[Tensor], features: nn.Module
                     ) -> float:
    """FID between the batches of ``real`` and ``fake`` uint8 images under ``features``; a
    ``ValueError`` if it is not finite (too few images for the feature dimension, or NaN)."""
    metric = FrechetInceptionDistance(feature=features, normalize=False)
    counts = [0, 0]
    for is_real, batches in ((True, real), (False, fake)):
        for batch in batches:
            metric.update(_rgb(batch), real=is_real)
            counts[not is_real] += batch.shape[0]
    if min(counts) < 2:
        raise ValueError(f"FID needs at least 2 real and 2 generated images, got {counts[0]} "
                         f"and {counts[1]}")
    value = float(metric.compute())
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"FID came out {value}: use more images (n) than features "
                         f"({getattr(features, 'num_features', '?')}), or check the samples")
    return value
