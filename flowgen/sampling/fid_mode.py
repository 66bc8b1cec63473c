"""``sample.py mode=fid``: the Fréchet distance between ``n`` samples per temperature and ``n``
images of the data the model was trained on (or ``data=...``), and for RGB images with the
Inception network their Inception Score, -> ``evaluation.json``."""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from flowgen.diagnostics import display_pixels
from flowgen.objectives.fid import (
    InceptionFeatures,
    StandInFeatures,
    frechet_distance,
    inception_score,
)
from flowgen.sampling.grid import sample_images
from flowgen.sampling.interpolate import check_data_shape, load_val_set
from flowgen.sampling.settings import Settings, temperature_tag
from flowgen.sampling.trained_data import data_record


def _real_batches(val_set, n: int, batch_size: int):
    """The first ``n`` validation images as uint8 batches ``[B, C, H, W]``."""
    for start in range(0, n, batch_size):
        yield torch.stack([torch.as_tensor(val_set[i][0])
                           for i in range(start, min(start + batch_size, n))])


def _fake_pixels(model, settings: Settings, temperature: float, n_bits: int) -> torch.Tensor:
    images = sample_images(model, settings.n, temperature, settings.seed, settings.batch_size,
                           settings.label, settings.level_temperatures, settings.progress)
    pixels, health = display_pixels(images, n_bits)
    if health.nonfinite:  # a red tile is a picture, not a sample: FID of it means nothing
        raise ValueError(f"{health.nonfinite} of {settings.n} samples at temperature "
                         f"{temperature} are non-finite: FID is undefined; lower the temperature")
    return (pixels * 255).round().to(torch.uint8)


def fid_mode(cfg: DictConfig, settings: Settings, model, meta: dict, health: dict,
             autocast) -> tuple:
    """FID of each temperature's samples against the data (``cfg.data``, chosen by
    :func:`~flowgen.sampling.trained_data.with_trained_data`): ``({}, record, results)``."""
    val_set = load_val_set(cfg.data)
    check_data_shape(val_set, model.in_shape)
    n_real = min(settings.n, len(val_set))
    features = (StandInFeatures() if settings.fid_features == "standin"
                else InceptionFeatures(settings.inception_weights or "<unset>"))
    # Inception Score: for natural RGB images only (of greyscale digits it measures nothing)
    with_is = settings.fid_features == "inception" and model.in_shape[0] == 3
    scores, inception_scores = {}, {}
    with autocast:
        for t in settings.temperatures:
            tag = temperature_tag(t)
            fake = _fake_pixels(model, settings, t, meta["n_bits"])
            scores[tag] = frechet_distance(_real_batches(val_set, n_real, settings.batch_size),
                                           fake.split(settings.batch_size), features)
            print(f"fid {tag}: {scores[tag]:.4f} ({settings.n} samples, {n_real} data images, "
                  f"{settings.fid_features})")
            if with_is:
                mean, std = inception_score(fake.split(settings.batch_size),
                                            settings.inception_weights)
                inception_scores[tag] = {"mean": mean, "std": std}
                print(f"inception score {tag}: {mean:.3f} ± {std:.3f}")
    source = data_record(cfg)
    results = {"fid": scores, "inception_score": inception_scores or None,
               "n": settings.n, "n_real": n_real,
               "features": settings.fid_features, "inception_weights":
               settings.inception_weights, "seed": settings.seed, "ckpt": str(settings.ckpt),
               "ema": meta["ema"], **source}
    return {}, source, results

