"""``sample.py`` for vector models (``event_shape`` ``(D,)``: data=two_moons, data=npz_vectors).

``mode=grid`` (the default) writes, per temperature, ``samples-T<t>.npz``: ``x`` float64 ``[n, D]``
in data units (un-standardised with the statistics the checkpoint keeps for ``data=npz_vectors``;
as drawn for the toys) and ``finite`` bool ``[n]``; for ``D = 2`` also ``density-T<t>.png``, the
data | learned density | samples picture of :func:`flowgen.plots.density_panel`, in data units,
over training points of the data the model was trained on (its record, see ``data_from``).

``mode=evaluate`` writes ``evaluation.json``: ``nll``, the mean negative log-likelihood in nats over
the test split (:class:`~flowgen.objectives.Density`, as ``test/nll`` in training); for
standardised data also ``nll_data``, in data units; for a toy of known density its ``entropy``
and ``nll_gap``. The other modes read or write images: one line says so.

A sample with a non-finite coordinate is never passed off as data: it stays in ``x`` (a NaN or
inf row), is marked in ``finite``, counted per file in ``settings.json`` and printed, with a
warning on stderr.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch.utils.data import TensorDataset

from flowgen.data.npz_vectors import CHECKPOINT_KEY, Standardisation
from flowgen.data.vectors import VectorDataModule
from flowgen.models import FlowModel
from flowgen.models.checkpoint import read_checkpoint
from flowgen.objectives import Density
from flowgen.plots import density_panel
from flowgen.sampling.evaluate import evaluate
from flowgen.sampling.grid import sample_images
from flowgen.sampling.settings import Settings, output_dir, temperature_tag
from flowgen.sampling.trained_data import data_record, evaluation_data, recorded_data

#: The modes a vector model supports.
VECTOR_MODES = ("grid", "evaluate")
#: Training points drawn in the density picture's data panel (as training's DensityPanel).
DATA_POINTS = 20_000


def is_vector_model(model: FlowModel) -> bool:
    return len(model.event_shape) == 1


def check_vector_settings(settings: Settings, meta: dict) -> None:
    """One line for what a vector model cannot do: image modes, bf16 pictures."""
    if settings.mode not in VECTOR_MODES:
        raise ValueError(f"mode={settings.mode} is for images, and {settings.ckpt} holds a vector "
                         f"model ({meta.get('arch')}): vector models support mode=grid (samples "
                         f".npz, and the density picture for 2-D data) and mode=evaluate (test "
                         f"NLL in nats)")
    if settings.precision != "fp32":
        raise ValueError(f"precision={settings.precision} is for image pictures: vector models "
                         f"sample in float32, use precision=fp32")


def checkpoint_standardisation(settings: Settings, meta: dict, dims: int
                               ) -> Standardisation | None:
    """The statistics a ``data=npz_vectors`` run kept in its checkpoint (read again by flowgen's
    one reader); None for data used as it is (the toys). An error when the record says the data
    was standardised but the statistics are missing or do not fit the model."""
    state = read_checkpoint(settings.ckpt).get(CHECKPOINT_KEY)
    if state is None:
        target = str((recorded_data(meta, settings.ckpt) or {}).get("_target_", ""))
        if target.endswith("." + CHECKPOINT_KEY):
            raise ValueError(f"{settings.ckpt} was trained on standardised data but keeps no "
                             f"statistics ({CHECKPOINT_KEY}): samples could not be put back in "
                             f"data units; use a checkpoint train.py wrote (last.ckpt, best-*)")
        return None
    standardisation = Standardisation.from_state(state, f"{settings.ckpt}: its statistics")
    if standardisation.dims != dims:
        raise ValueError(f"{settings.ckpt}: statistics of {standardisation.dims} features for a "
                         f"model of {dims}: not a checkpoint train.py wrote")
    return standardisation


def vector_data(cfg: DictConfig, settings: Settings, meta: dict, model: FlowModel,
                standardisation: Standardisation | None) -> tuple[VectorDataModule, dict]:
    """The datamodule of the data the model was trained on (see ``data_from``), set up in the
    checkpoint's units, and its record for ``settings.json``."""
    data, data_from = evaluation_data(cfg, meta, settings.ckpt)
    target = data.get("_target_")
    fix = ("pass the model's data: data=two_moons (or another toy), or data=npz_vectors "
           "data.path=<file>")
    datamodule = instantiate(data) if target else None
    if not isinstance(datamodule, VectorDataModule):
        raise ValueError(f"{settings.ckpt} holds a vector model but the data is {target} "
                         f"({data_from}), not vectors: {fix}")
    if datamodule.event_shape != model.event_shape:
        raise ValueError(f"the data ({target}) has samples of shape {datamodule.event_shape}, "
                         f"the model {model.event_shape}: {fix}")
    if standardisation is not None and hasattr(datamodule, "load_state_dict"):
        datamodule.load_state_dict(standardisation.state())  # the model's units, not the file's
    datamodule.setup("test")
    return datamodule, {**data_record(cfg, data), "data_from": data_from}


def _samples(settings: Settings, model: FlowModel, temperature: float,
             standardisation: Standardisation | None) -> torch.Tensor:
    """``n`` samples float64 ``[n, D]`` in data units (same seed: same samples on any device
    and batch size)."""
    z = sample_images(model, settings.n, temperature, settings.seed, settings.batch_size,
                      settings.label, settings.level_temperatures, settings.progress)
    return z.double() if standardisation is None else standardisation.inverse(z)


def _panel(model: FlowModel, datamodule: VectorDataModule, samples: torch.Tensor,
           standardisation: Standardisation | None):
    """The 2-D picture in data units: ``log p(x) = log p(z) - sum(log std)``."""
    device = next(model.parameters()).device
    shift = standardisation.log_scale if standardisation is not None else 0.0

    @torch.no_grad()
    def log_prob(x: torch.Tensor) -> torch.Tensor:
        z = standardisation.forward(x) if standardisation is not None else x
        return model.log_prob(z.to(device)).double().cpu() - shift

    data = datamodule.data_points("train", DATA_POINTS).float()
    return density_panel(data, log_prob, samples.float())


def grid_files(cfg: DictConfig, settings: Settings, model: FlowModel, meta: dict
               ) -> tuple[dict, dict]:
    """mode=grid: {file name: what to write} and the record (health per file, data)."""
    standardisation = checkpoint_standardisation(settings, meta, model.event_shape[0])
    datamodule, record = None, {"standardised": standardisation is not None}
    if model.event_shape == (2,):  # the data is read (and checked) before any sampling
        datamodule, source = vector_data(cfg, settings, meta, model, standardisation)
        record.update(source)
    files, health = {}, {}
    for t in settings.temperatures:
        tag = temperature_tag(t)
        x = _samples(settings, model, t, standardisation)
        finite = x.isfinite().all(1)
        files[f"samples-{tag}.npz"] = {"x": x.numpy(), "finite": finite.numpy()}
        health[f"samples-{tag}"] = {"n_samples": len(x), "nonfinite": int((~finite).sum())}
        if datamodule is not None:
            image, bad_pixels = _panel(model, datamodule, x, standardisation)
            files[f"density-{tag}.png"] = image
            health[f"samples-{tag}"]["nonfinite_density_pixels"] = bad_pixels
    record.update(_report(health))
    return files, record


def _report(health: dict[str, dict]) -> dict:
    """One line per file (and a warning on stderr for non-finite samples); the record."""
    for stem, h in health.items():
        print(f"{stem}: {h['nonfinite']} of {h['n_samples']} samples non-finite")
    nonfinite, total = (sum(h[k] for h in health.values()) for k in ("nonfinite", "n_samples"))
    if nonfinite:
        print(f"warning: {nonfinite} of {total} samples came out non-finite (NaN/inf rows, "
              f"finite=False in the .npz): the inverse overflowed. Lower the temperature or "
              f"retrain with a lower learning rate", file=sys.stderr)
    return {"n_samples": total, "nonfinite": nonfinite, "health": health}


def evaluate_nll(cfg: DictConfig, settings: Settings, model: FlowModel, meta: dict) -> dict:
    """mode=evaluate: the test NLL in nats (and in data units, and against the entropy)."""
    standardisation = checkpoint_standardisation(settings, meta, model.event_shape[0])
    datamodule, source = vector_data(cfg, settings, meta, model, standardisation)
    z = datamodule.points("test")
    test_set = TensorDataset(z, torch.zeros(len(z), dtype=torch.int64))
    nll, n_points = evaluate(model, Density(), test_set, settings.batch_size, settings.seed,
                             settings.limit_batches, settings.progress)
    if not math.isfinite(nll):
        raise ValueError(f"the NLL of {settings.ckpt} came out {nll} on {n_points} test points: "
                         f"the model gives them non-finite log-densities (broken weights, or data "
                         f"unlike its training data); nothing was written")
    results = {"nll": nll, "n_points": n_points, "split": "test"}
    if standardisation is not None:
        results["nll_data"] = nll + standardisation.log_scale
    entropy = datamodule.entropy() if hasattr(datamodule, "entropy") else None
    if entropy is not None and n_points == len(z):  # the floor over the same points
        results.update(entropy=entropy, nll_gap=nll - entropy)
    print("nll: " + ", ".join(f"{k} {v:.6f}" for k, v in results.items()
                              if isinstance(v, float)) + f" ({n_points} test points, nats)")
    return {**results, "batch_size": settings.batch_size, "limit_batches": settings.limit_batches,
            "ckpt": str(settings.ckpt), "arch": meta.get("arch"),
            "conditional": bool(getattr(model, "num_classes", 0)), "ema": meta["ema"], **source}


def run_vectors(cfg: DictConfig, settings: Settings, model: FlowModel, meta: dict) -> list[Path]:
    """What :func:`flowgen.sampling.run.run` does for a vector model: compute everything, then
    write the files and ``settings.json`` into the output folder (nothing when a check fails)."""
    check_vector_settings(settings, meta)
    if settings.mode == "evaluate":
        results = evaluate_nll(cfg, settings, model, meta)
        files, extra = {"evaluation.json": results}, {k: v for k, v in results.items()
                                                      if k.startswith("data")}
    else:
        files, extra = grid_files(cfg, settings, model, meta)
    out = output_dir(settings, cfg.paths.root_dir)
    written = []
    for name, content in files.items():
        path = out / name
        if name.endswith(".npz"):
            np.savez(path, **content)
        elif name.endswith(".json"):
            path.write_text(json.dumps(content, indent=2) + "\n")
        else:
            content.save(path)
        written.append(path)
    record = {**settings.to_json(), "ema": meta["ema"], "out": str(out), "n_bits": None,
              "arch": meta.get("arch"), "model_config": meta.get("config"),
              "files": [p.name for p in written], **extra}
    (out / "settings.json").write_text(json.dumps(record, indent=2) + "\n")
    return [*written, out / "settings.json"]
