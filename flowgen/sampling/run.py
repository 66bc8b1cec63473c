"""``run(cfg)``: everything ``sample.py`` does, callable from tests with a composed config."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import torch
from omegaconf import DictConfig

from flowgen.data import postprocess
from flowgen.diagnostics import SampleHealth, display_pixels
from flowgen.models import FlowModel, load_model
from flowgen.sampling.edit import (
    attribute_column,
    attribute_direction,
    load_image_files,
    manipulate,
    reconstruct,
)
from flowgen.sampling.evaluate import evaluate_bpd
from flowgen.sampling.fid_mode import fid_mode
from flowgen.sampling.grid import (
    check_label,
    check_level_temperatures,
    sample_images,
    save_grid,
)
from flowgen.sampling.interpolate import (
    check_data_shape,
    encoded_endpoints,
    grid_frames,
    load_val_images,
    load_val_set,
    path_frames,
    random_endpoints,
    save_gif,
    save_strip,
)
from flowgen.sampling.limits import check_memory
from flowgen.sampling.settings import Settings, output_dir, parse_settings, temperature_tag
from flowgen.sampling.trained_data import data_record, with_trained_data
from flowgen.sampling.vectors import is_vector_model, run_vectors


def load_checkpoint(settings: Settings) -> tuple[FlowModel, dict]:
    """The model (flowgen's one checkpoint reader: the same messages as ``train.py``) and its
    record; then, for an image model, the memory caps for its image shape, before anything is
    decoded (a vector model's checks are :mod:`flowgen.sampling.vectors`')."""
    model, meta = load_model(settings.ckpt, map_location=settings.device, ema=settings.ema)
    if is_vector_model(model):
        return model, meta
    if not isinstance(meta.get("n_bits"), int) or not 1 <= meta["n_bits"] <= 8:
        raise ValueError(f"{settings.ckpt}: the flowgen record has no valid n_bits ({meta})")
    check_memory(settings, model.in_shape)
    return model, meta


def _to_pixels(images, n_bits: int, what: str, health: dict[str, SampleHealth]):
    """Model-space images -> pixels, counting the broken ones into ``health[what]`` (non-finite
    ones become red tiles) and saying so: a broken sample is never silent."""
    pixels, counted = display_pixels(images, n_bits)
    health[what] = health[what] + counted if what in health else counted
    return pixels


def _report_health(health: dict[str, SampleHealth]) -> dict:
    """Print one line per picture (and a warning when some are non-finite); the record for
    ``settings.json``: totals and the counts per picture."""
    for what, h in health.items():
        print(f"{what}: {h.describe('images')}")
    total = sum(health.values(), SampleHealth(0, 0, 0))
    if total.nonfinite:
        print(f"warning: {total.nonfinite} of {total.n_samples} images came out non-finite "
              f"(red tiles): the decoder overflowed. Lower the temperature, or train with "
              f"model.coupling_scale=bounded", file=sys.stderr)
    return {**total.to_json(), "health": {k: h.to_json() for k, h in health.items()}}


def _images(cfg: DictConfig, settings: Settings, model: FlowModel, val_set=None):
    """uint8 ``[n, C, H, W]``: the ``images=`` files, else the ``indices=`` of the validation
    split; and the stem that names them in file names."""
    if settings.images:
        stem = "-".join(p.stem for p in settings.images[:3]) + \
            (f"-and-{len(settings.images) - 3}" if len(settings.images) > 3 else "")
        return load_image_files(settings.images, model.in_shape), f"files-{stem}"
    pixels = load_val_images(cfg.data, settings.indices, model.in_shape, val_set)
    return pixels, "data-" + "-".join(map(str, settings.indices[:8])) + \
        (f"-and-{len(settings.indices) - 8}" if len(settings.indices) > 8 else "")


def _endpoint_pixels(cfg: DictConfig, entries, model: FlowModel):
    """uint8 ``[len(entries), C, H, W]``, in order: an int is an index of the validation
    split, anything else an image file (the data is loaded only when an index needs it)."""
    indices = [e for e in entries if isinstance(e, int)]
    files = [e for e in entries if not isinstance(e, int)]
    from_data = iter(load_val_images(cfg.data, indices, model.in_shape) if indices else [])
    from_files = iter(load_image_files(files, model.in_shape) if files else [])
    return torch.stack([next(from_data if isinstance(e, int) else from_files) for e in entries])


def _interpolation_rows(cfg: DictConfig, settings: Settings, model: FlowModel,
                        n_bits: int) -> dict[str, list[list[torch.Tensor]]]:
    """file stem -> the endpoints of each row of that picture (``[N, *shape]`` per level)."""
    if settings.endpoints == "random":  # one strip per temperature, the same latents scaled
        return {f"interpolation-{temperature_tag(t)}":
                [random_endpoints(model, settings.n_endpoints, t, settings.seed)]
                for t in settings.temperatures}
    if settings.endpoints == "pairs":
        rows, per_row = len(settings.pairs), len(settings.pairs[0])
        pixels = _endpoint_pixels(cfg, [e for row in settings.pairs for e in row], model)
        zs = encoded_endpoints(model, pixels, n_bits, settings.batch_size)
        return {"interpolation-pairs": [[z.reshape(rows, per_row, *z.shape[1:])[r] for z in zs]
                                        for r in range(rows)]}
    pixels, stem = _images(cfg, settings, model)  # data or images: one strip
    return {f"interpolation-{stem}": [encoded_endpoints(model, pixels, n_bits,
                                                        settings.batch_size)]}


def _grid(cfg, settings: Settings, model, meta: dict, health: dict, autocast) -> tuple:
    check_level_temperatures(model, settings.level_temperatures)
    with autocast:
        grids = {f"grid-{temperature_tag(t)}":
                 sample_images(model, settings.n, t, settings.seed, settings.batch_size,
                               settings.label, settings.level_temperatures, settings.progress)
                 for t in settings.temperatures}
    if settings.layout == "rows":  # one row per temperature, the same latents scaled
        grids = {"grid-temperatures": torch.cat(list(grids.values()))}
    return {stem: ("grid", _to_pixels(images, meta["n_bits"], stem, health), settings.nrow)
            for stem, images in grids.items()}, {}, None


def _interpolate(cfg, settings: Settings, model, meta: dict, health: dict, autocast) -> tuple:
    pictures, n_bits = {}, meta["n_bits"]
    for stem, rows in _interpolation_rows(cfg, settings, model, n_bits).items():
        with autocast:  # the endpoints were encoded in float32; only decoding is bf16
            frames = torch.stack([path_frames(model, zs, settings.steps, settings.method,
                                              settings.batch_size) for zs in rows])
        pixels = _to_pixels(frames.flatten(0, 1), n_bits, stem, health)
        frames = pixels.reshape(*frames.shape[:2], *pixels.shape[1:])
        pictures[stem] = ("interpolation", frames)  # [rows, frames, C, H, W]
    extra = dict(frames_per_row=frames.shape[1],
                 endpoint_frames=list(range(0, frames.shape[1], settings.steps - 1)))
    if settings.endpoints == "data" or any(isinstance(e, int) for row in settings.pairs
                                           for e in row):
        extra.update(data_record(cfg))
    return pictures, extra, None


def _reconstruct(cfg, settings: Settings, model, meta: dict, health: dict, autocast) -> tuple:
    n_bits = meta["n_bits"]
    pixels, stem = _images(cfg, settings, model)
    x, recon = reconstruct(model, pixels, n_bits, settings.batch_size)
    error = (recon - x).abs().flatten(1).amax(1)
    extra = dict(max_abs_error=error.max().item(), max_abs_error_per_image=error.tolist())
    if not settings.images:
        extra.update(data_record(cfg))
    print(f"reconstruction error (max abs, model space): {error.max().item():.3g}")
    recon = _to_pixels(recon, n_bits, f"reconstruction-{stem}", health)
    originals = postprocess(x, n_bits).expand(-1, recon.shape[1], -1, -1)
    return {f"reconstruction-{stem}": ("grid", torch.cat([originals, recon]), len(pixels))}, \
        extra, None


def _manipulate(cfg, settings: Settings, model, meta: dict, health: dict, autocast) -> tuple:
    n_bits = meta["n_bits"]
    val_set = load_val_set(cfg.data)
    check_data_shape(val_set, model.in_shape)
    column = attribute_column(val_set, settings.attribute)  # a bad name fails before work
    pixels, stem = _images(cfg, settings, model, val_set)
    direction, n_with, n_without = attribute_direction(
        model, val_set, settings.attribute, n_bits, settings.max_images, settings.batch_size,
        settings.progress)
    edits = manipulate(model, pixels, direction, settings.alphas, n_bits, settings.batch_size,
                       settings.progress)
    extra = dict(data_record(cfg), images_with_attribute=n_with,
                 images_without_attribute=n_without,
                 direction_norm_per_level=[d.norm().item() for d in direction],
                 conditional_decoded_unconditionally=bool(getattr(model, "num_classes", 0)))
    if column is not None:
        extra.update(attribute_column=column)
    name = settings.attribute if column is not None else f"attribute{settings.attribute}"
    stem = f"manipulate-{name}-{stem}"
    return {stem: ("grid", _to_pixels(edits, n_bits, stem, health), len(settings.alphas))}, \
        extra, None


def _evaluate(cfg, settings: Settings, model, meta: dict, health: dict, autocast) -> tuple:
    val_set = load_val_set(cfg.data)
    check_data_shape(val_set, model.in_shape)
    bpd, n_images = evaluate_bpd(model, meta["n_bits"], val_set, settings.batch_size,
                                 settings.seed, settings.limit_batches, settings.progress,
                                 settings.noise_seed)
    noise = (f"noise_seed {settings.noise_seed}" if settings.noise_seed is not None
             else f"seed {settings.seed}")
    if not math.isfinite(bpd):  # NaN is not JSON, and no bits/dim at all
        raise ValueError(f"the bits/dim of {settings.ckpt} came out {bpd} on {n_images} "
                         f"validation images: the model gives them non-finite log-densities "
                         f"(broken weights, or data unlike its training data); nothing was "
                         f"written")
    print(f"bpd: {bpd:.6f} ({n_images} validation images, {noise})")
    source = data_record(cfg)  # checkpoint | config
    results = {"bpd": bpd, "n_images": n_images, "seed": settings.seed,
               "noise_seed": settings.noise_seed, "batch_size": settings.batch_size,
               "limit_batches": settings.limit_batches, "ckpt": str(settings.ckpt),
               "n_bits": meta["n_bits"], "arch": meta.get("arch"),
               "conditional": bool(getattr(model, "num_classes", 0)), "ema": meta["ema"],
               **source}
    return {}, source, results


def reads_data(settings: Settings) -> bool:
    """Whether the mode reads images of a dataset (then they come from the data the model was
    trained on, unless the command line names other data: see ``data_from``)."""
    if settings.mode == "interpolate":
        return settings.endpoints == "data" or any(isinstance(e, int) for row in settings.pairs
                                                   for e in row)
    if settings.mode == "reconstruct":
        return not settings.images
    return settings.mode in ("manipulate", "evaluate", "fid")


#: mode -> (cfg, settings, model, meta, health, autocast) -> (pictures, extra record, results);
#: a mode that :func:`reads_data` finds its data in ``cfg.data`` and its origin in
#: ``cfg.data_from``
MODES = {"grid": _grid, "interpolate": _interpolate, "reconstruct": _reconstruct,
         "manipulate": _manipulate, "evaluate": _evaluate, "fid": fid_mode}


def _save(pictures: dict, out: Path, settings: Settings) -> list[Path]:
    written = []
    for stem, (kind, images, *nrow) in pictures.items():
        if kind == "grid":
            written.append(save_grid(images, out / f"{stem}.png", nrow[0]))
        else:  # a strip (one row) or a grid of rows; its GIF animates every row at once
            one_row = images.shape[0] == 1
            written.append(save_strip(images[0], out / f"{stem}.png") if one_row else
                           save_grid(images.flatten(0, 1), out / f"{stem}.png", images.shape[1]))
            written.append(save_gif(images[0] if one_row else grid_frames(images),
                                    out / f"{stem}.gif", settings.frame_ms, settings.gif_scale))
    return written


def run(cfg: DictConfig) -> list[Path]:
    """Validate the settings, load the checkpoint, compute every picture, then write them and
    ``settings.json`` into the output folder; returns the paths written. Nothing is written
    when a check fails."""
    settings = parse_settings(cfg)
    model, meta = load_checkpoint(settings)
    if is_vector_model(model):  # samples as .npz, the 2-D density picture, the test NLL
        return run_vectors(cfg, settings, model, meta)
    check_label(model, settings.label)
    health: dict[str, SampleHealth] = {}  # picture stem -> its broken samples
    # precision=bf16: the coupling networks decode in bf16, the flow itself stays float32.
    autocast = torch.autocast(settings.device.type, dtype=torch.bfloat16,
                              enabled=settings.precision == "bf16")
    if reads_data(settings):  # the data the model was trained on, unless told otherwise
        cfg = with_trained_data(cfg, meta, settings.ckpt)
    pictures, extra, results = MODES[settings.mode](cfg, settings, model, meta, health, autocast)
    if health:
        extra.update(_report_health(health))
    out = output_dir(settings, cfg.paths.root_dir)
    written = _save(pictures, out, settings)
    if results is not None:
        written.append(out / "evaluation.json")
        written[-1].write_text(json.dumps(results, indent=2) + "\n")
    record = {**settings.to_json(), "ema": meta["ema"],  # whether the EMA weights were used
              "out": str(out), "n_bits": meta["n_bits"], "arch": meta.get("arch"),
              "model_config": meta.get("config"), "files": [p.name for p in written], **extra}
    settings_path = out / "settings.json"
    settings_path.write_text(json.dumps(record, indent=2) + "\n")
    return [*written, settings_path]
