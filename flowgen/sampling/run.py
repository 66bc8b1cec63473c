"""``run(cfg)``: everything ``sample.py`` does, callable from tests with a composed config."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from omegaconf import DictConfig

from flowgen.data import postprocess
from flowgen.models import MultiScaleFlow, load_model
from flowgen.sampling.grid import check_label, finite, sample_images, save_grid
from flowgen.sampling.interpolate import (
    endpoint_latents,
    interpolation_frames,
    load_val_images,
    save_gif,
    save_strip,
)
from flowgen.sampling.settings import Settings, output_dir, parse_settings, temperature_tag

#: What a user can get wrong (paths, values, files): ``sample.py`` prints these as one line.
USER_ERRORS = (FileNotFoundError, ValueError, OSError)


def load_checkpoint(settings: Settings) -> tuple[MultiScaleFlow, dict]:
    try:
        model, meta = load_model(settings.ckpt, map_location=settings.device)
    except ValueError as err:  # keep torch.load's advice (weights_only=False) out of the message
        if "not a readable flowgen checkpoint" not in str(err):
            raise
        raise ValueError(f"{settings.ckpt} is not a readable flowgen checkpoint (not a torch file, "
                         f"truncated, or holding objects beyond tensors and plain data)") from err
    if not isinstance(meta.get("n_bits"), int) or not 1 <= meta["n_bits"] <= 8:
        raise ValueError(f"{settings.ckpt}: the flowgen record has no valid n_bits ({meta})")
    return model, meta


def _to_pixels(images, n_bits: int, what: str):
    images, bad = finite(images)
    if bad:
        print(f"warning: {bad} {what} had non-finite values (shown black where so): lower the "
              f"temperature", file=sys.stderr)
    return postprocess(images, n_bits)


def run(cfg: DictConfig) -> list[Path]:
    """Validate the settings, load the checkpoint, compute every picture, then write them and
    ``settings.json`` into the output folder; returns the paths written. Nothing is written
    when a check fails."""
    settings = parse_settings(cfg)
    model, meta = load_checkpoint(settings)
    n_bits = meta["n_bits"]
    check_label(model, settings.label)
    pictures: dict[str, tuple] = {}  # file stem -> what to save
    if settings.mode == "grid":
        for t in settings.temperatures:
            images = sample_images(model, settings.n, t, settings.seed, settings.batch_size,
                                   settings.label)
            pictures[f"grid-{temperature_tag(t)}"] = ("grid", _to_pixels(images, n_bits, "images"))
    else:
        if settings.endpoints == "data":
            pixels = load_val_images(cfg.data, settings.indices, model.in_shape)
            runs = {"interpolation-data-{}-{}".format(*settings.indices):
                    endpoint_latents(model, "data", pixels=pixels, n_bits=n_bits)}
        else:
            runs = {f"interpolation-{temperature_tag(t)}":
                    endpoint_latents(model, "random", temperature=t, seed=settings.seed)
                    for t in settings.temperatures}
        for stem, (za, zb) in runs.items():
            frames = interpolation_frames(model, za, zb, settings.steps, settings.method,
                                          settings.batch_size)
            pictures[stem] = ("interpolation", _to_pixels(frames, n_bits, "frames"))

    out = output_dir(settings, cfg.paths.root_dir)
    written = []
    for stem, (kind, images) in pictures.items():
        if kind == "grid":
            written.append(save_grid(images, out / f"{stem}.png", settings.nrow))
        else:
            written.append(save_strip(images, out / f"{stem}.png"))
            written.append(save_gif(images, out / f"{stem}.gif", settings.frame_ms,
                                    settings.gif_scale))
    record = {**settings.to_json(), "out": str(out), "n_bits": n_bits, "arch": meta.get("arch"),
              "model_config": meta.get("config"), "files": [p.name for p in written]}
    if settings.mode == "interpolate" and settings.endpoints == "data":
        record["data"] = cfg.data.get("_target_")
        record["data_path"] = cfg.data.get("path") or cfg.data.get("root")
    settings_path = out / "settings.json"
    settings_path.write_text(json.dumps(record, indent=2) + "\n")
    return [*written, settings_path]
