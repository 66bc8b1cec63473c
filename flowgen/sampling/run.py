"""``run(cfg)``: everything ``sample.py`` does, callable from tests with a composed config."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from omegaconf import DictConfig

from flowgen.data import postprocess
from flowgen.models import MultiScaleFlow, load_model
from flowgen.sampling.edit import attribute_direction, load_image_files, manipulate, reconstruct
from flowgen.sampling.evaluate import evaluate_bpd
from flowgen.sampling.grid import (
    check_label,
    check_level_temperatures,
    finite,
    sample_images,
    save_grid,
)
from flowgen.sampling.interpolate import (
    check_data_shape,
    endpoint_latents,
    interpolation_frames,
    load_val_images,
    load_val_set,
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


def _images(cfg: DictConfig, settings: Settings, model: MultiScaleFlow, val_set=None):
    """uint8 ``[n, C, H, W]``: the ``images=`` files, else the ``indices=`` of the validation
    split; and the stem that names them in file names."""
    if settings.images:
        stem = "-".join(p.stem for p in settings.images[:3]) + \
            (f"-and-{len(settings.images) - 3}" if len(settings.images) > 3 else "")
        return load_image_files(settings.images, model.in_shape), f"files-{stem}"
    pixels = load_val_images(cfg.data, settings.indices, model.in_shape, val_set)
    return pixels, "data-" + "-".join(map(str, settings.indices[:8])) + \
        (f"-and-{len(settings.indices) - 8}" if len(settings.indices) > 8 else "")


def _data_record(cfg: DictConfig) -> dict:
    return {"data": cfg.data.get("_target_"),
            "data_path": cfg.data.get("path") or cfg.data.get("root")}


def run(cfg: DictConfig) -> list[Path]:
    """Validate the settings, load the checkpoint, compute every picture, then write them and
    ``settings.json`` into the output folder; returns the paths written. Nothing is written
    when a check fails."""
    settings = parse_settings(cfg)
    model, meta = load_checkpoint(settings)
    n_bits = meta["n_bits"]
    check_label(model, settings.label)
    pictures: dict[str, tuple] = {}  # file stem -> what to save
    extra: dict = {}  # what settings.json records beyond the settings
    results: dict | None = None  # mode=evaluate: evaluation.json
    if settings.mode == "grid":
        check_level_temperatures(model, settings.level_temperatures)
        grids = {f"grid-{temperature_tag(t)}":
                 sample_images(model, settings.n, t, settings.seed, settings.batch_size,
                               settings.label, settings.level_temperatures, settings.progress)
                 for t in settings.temperatures}
        if settings.layout == "rows":  # one row per temperature, the same latents scaled
            grids = {"grid-temperatures": torch.cat(list(grids.values()))}
        for stem, images in grids.items():
            pictures[stem] = ("grid", _to_pixels(images, n_bits, "images"), settings.nrow)
    elif settings.mode == "interpolate":
        if settings.endpoints == "data":
            pixels = load_val_images(cfg.data, settings.indices, model.in_shape)
            runs = {"interpolation-data-{}-{}".format(*settings.indices):
                    endpoint_latents(model, "data", pixels=pixels, n_bits=n_bits)}
            extra.update(_data_record(cfg))
        else:
            runs = {f"interpolation-{temperature_tag(t)}":
                    endpoint_latents(model, "random", temperature=t, seed=settings.seed)
                    for t in settings.temperatures}
        for stem, (za, zb) in runs.items():
            frames = interpolation_frames(model, za, zb, settings.steps, settings.method,
                                          settings.batch_size)
            pictures[stem] = ("interpolation", _to_pixels(frames, n_bits, "frames"))
    elif settings.mode == "reconstruct":
        pixels, stem = _images(cfg, settings, model)
        x, recon = reconstruct(model, pixels, n_bits, settings.batch_size)
        error = (recon - x).abs().flatten(1).amax(1)
        extra.update(max_abs_error=error.max().item(), max_abs_error_per_image=error.tolist())
        if not settings.images:
            extra.update(_data_record(cfg))
        print(f"reconstruction error (max abs, model space): {error.max().item():.3g}")
        both = torch.cat([postprocess(x, n_bits), _to_pixels(recon, n_bits, "reconstructions")])
        pictures[f"reconstruction-{stem}"] = ("grid", both, len(pixels))
    elif settings.mode == "manipulate":
        val_set = load_val_set(cfg.data)
        check_data_shape(val_set, model.in_shape)
        pixels, stem = _images(cfg, settings, model, val_set)
        direction, n_with, n_without = attribute_direction(
            model, val_set, settings.attribute, n_bits, settings.max_images,
            settings.batch_size, settings.progress)
        edits = manipulate(model, pixels, direction, settings.alphas, n_bits,
                           settings.batch_size, settings.progress)
        extra.update(_data_record(cfg), images_with_attribute=n_with,
                     images_without_attribute=n_without,
                     direction_norm_per_level=[d.norm().item() for d in direction],
                     conditional_decoded_unconditionally=bool(getattr(model, "num_classes", 0)))
        pictures[f"manipulate-attribute{settings.attribute}-{stem}"] = (
            "grid", _to_pixels(edits, n_bits, "edits"), len(settings.alphas))
    else:  # evaluate
        val_set = load_val_set(cfg.data)
        check_data_shape(val_set, model.in_shape)
        bpd, n_images = evaluate_bpd(model, n_bits, val_set, settings.batch_size, settings.seed,
                                     settings.limit_batches, settings.progress)
        print(f"bpd: {bpd:.6f} ({n_images} validation images, seed {settings.seed})")
        results = {"bpd": bpd, "n_images": n_images, "seed": settings.seed,
                   "batch_size": settings.batch_size, "limit_batches": settings.limit_batches,
                   "ckpt": str(settings.ckpt), "n_bits": n_bits, "arch": meta.get("arch"),
                   "conditional": bool(getattr(model, "num_classes", 0)), **_data_record(cfg)}

    out = output_dir(settings, cfg.paths.root_dir)
    written = []
    for stem, (kind, images, *nrow) in pictures.items():
        if kind == "grid":
            written.append(save_grid(images, out / f"{stem}.png", nrow[0]))
        else:
            written.append(save_strip(images, out / f"{stem}.png"))
            written.append(save_gif(images, out / f"{stem}.gif", settings.frame_ms,
                                    settings.gif_scale))
    if results is not None:
        written.append(out / "evaluation.json")
        written[-1].write_text(json.dumps(results, indent=2) + "\n")
    record = {**settings.to_json(), "out": str(out), "n_bits": n_bits, "arch": meta.get("arch"),
              "model_config": meta.get("config"), "files": [p.name for p in written], **extra}
    settings_path = out / "settings.json"
    settings_path.write_text(json.dumps(record, indent=2) + "\n")
    return [*written, settings_path]
