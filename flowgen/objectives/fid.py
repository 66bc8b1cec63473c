"""Sample quality beyond bits/dim: Fréchet Inception Distance (Heusel et al. 2017) with
torchmetrics, on the standard FID Inception network (TensorFlow's 2015-12-05 graph as
torch-fidelity ports it: the features every published FID uses) read from a local file, never
downloaded; or on any feature extractor (the tests use a small fixed network: no weights).

Images are uint8 ``[N, C, H, W]``; greyscale is repeated to 3 channels.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance, NoTrainInceptionV3
from torchmetrics.image.inception import InceptionScore

#: The file torchmetrics' own FID downloads (torch-fidelity's release of the FID Inception).
FID_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
#: The FID network's logits (1008 classes: TF's graph); torchvision's ImageNet net has 1000.
_FID_LOGITS = 1008


def _checked_state(path: Path) -> dict[str, Tensor]:
    """The tensors of ``path`` (``weights_only=True``: a crafted file cannot run code), or a
    one-line error naming what the file is and what FID needs."""
    fix = (f"FID needs the FID Inception weights locally ({FID_WEIGHTS_FILE}, from "
           f"torch-fidelity's releases; no download at run time): give inception_weights=<path>")
    if not path.is_file():
        raise FileNotFoundError(f"Inception weights not found: {path}. {fix}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001  (pickle, zip and torch errors alike: not weights)
        raise ValueError(f"{path} is not a torch weights file ({type(err).__name__}). {fix}"
                         ) from err
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path} holds no state dict of tensors. {fix}")
    fc = state.get("fc.weight")
    if fc is None or tuple(fc.shape) != (_FID_LOGITS, 2048):
        other = ("torchvision's ImageNet Inception-v3 (FID with it is not comparable to "
                 "published figures)" if fc is not None and fc.shape[0] == 1000
                 else "not the FID Inception")
        raise ValueError(f"{path} is {other}. {fix}")
    return state


class InceptionFeatures(nn.Module):
    """uint8 images ``[N, 3, H, W]`` -> the ``feature`` output of the FID Inception network
    (torchmetrics' ``NoTrainInceptionV3``, resizing to 299 as TF did): the 2048 pool features
    (FID) or the 1008 ``logits_unbiased`` (Inception Score). Its weights are read from the local
    file ``weights`` (:data:`FID_WEIGHTS_FILE`): the network torchmetrics'
    ``FrechetInceptionDistance(feature=2048)`` uses, so the scores are the same."""

    def __init__(self, weights: str | Path, feature: str = "2048"):
        super().__init__()
        state = _checked_state(Path(weights).expanduser())
        self.num_features = _FID_LOGITS if feature == "logits_unbiased" else int(feature)
        # torch-fidelity reads its file with the full unpickler: hand it a copy holding only
        # the tensors checked above, never the user's file.
        with tempfile.TemporaryDirectory() as tmp:
            torch.save(state, Path(tmp) / "fid-inception.pth")
            self.net = NoTrainInceptionV3(name="inception-v3-compat", features_list=[feature],
                                          feature_extractor_weights_path=str(
                                              Path(tmp) / "fid-inception.pth"))

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        return self.net(images)


def inception_score(images: Iterable[Tensor], weights: str | Path, splits: int = 10,
                    device: torch.device | str = "cpu") -> tuple[float, float]:
    """Inception Score (Salimans et al. 2016) of uint8 RGB batches ``[B, 3, H, W]``: mean and
    std over ``splits`` of ``exp E_x KL(p(y|x) || p(y))``, with torchmetrics on the FID
    Inception's logits (meaningful for natural RGB images only)."""
    import warnings

    with warnings.catch_warnings():  # "will save all extracted features": n images, as asked
        warnings.simplefilter("ignore", UserWarning)
        metric = InceptionScore(feature=InceptionFeatures(weights, "logits_unbiased"),
                                splits=splits, sync_on_compute=False).to(device)
    for batch in images:
        metric.update(_rgb(batch).to(device))
    mean, std = metric.compute()
    return float(mean), float(std)


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


class FrechetDistance:
    """FID against one fixed set of real uint8 images ``[N, C, H, W]`` (their features are
    computed once, at construction), for any number of generated sets: ``scorer(fake)``.

    Never synchronised across processes (``sync_on_compute=False``): one process scores, e.g.
    rank zero in a DDP run, without the others waiting in a collective."""

    def __init__(self, real: Iterable[Tensor], features: nn.Module,
                 device: torch.device | str = "cpu"):
        self.features = features
        self.metric = FrechetInceptionDistance(feature=features, normalize=False,
                                               reset_real_features=False,
                                               sync_on_compute=False).to(device)
        self.n_real = 0
        for batch in real:
            self.metric.update(_rgb(batch).to(self.metric.device), real=True)
            self.n_real += batch.shape[0]

    def __call__(self, fake: Iterable[Tensor]) -> float:
        """FID of the ``fake`` batches; a ``ValueError`` if it is not finite (too few images
        for the feature dimension, or NaN)."""
        self.metric.reset()  # the generated images only: the real features stay
        n_fake = 0
        for batch in fake:
            self.metric.update(_rgb(batch).to(self.metric.device), real=False)
            n_fake += batch.shape[0]
        if min(self.n_real, n_fake) < 2:
            raise ValueError(f"FID needs at least 2 real and 2 generated images, got "
                             f"{self.n_real} and {n_fake}")
        value = float(self.metric.compute())
        if not math.isfinite(value):
            raise ValueError(f"FID came out {value}: use more images (n) than features "
                             f"({getattr(self.features, 'num_features', '?')}), or check the "
                             f"samples")
        return value


def frechet_distance(real: Iterable[Tensor], fake: Iterable[Tensor], features: nn.Module
                     ) -> float:
    """FID between the batches of ``real`` and ``fake`` uint8 images under ``features``; a
    ``ValueError`` if it is not finite (too few images for the feature dimension, or NaN)."""
    return FrechetDistance(real, features)(fake)
