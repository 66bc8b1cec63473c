"""Shared test helpers: brute-force checks of the flow contract."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = ROOT.parent / "shared" / "datasets"


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def perturb_(module: torch.nn.Module, scale: float = 0.2) -> torch.nn.Module:
    """Move every parameter away from its (often identity) initial value, so that the checks
    run on a generic member of the family, not on the identity map."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))
    return module


def brute_force_logabsdet(fn, x: torch.Tensor) -> torch.Tensor:
    """``log|det J|`` per sample of ``fn`` (one sample -> tensor of the same numel) by autograd."""
    out = []
    shape = x.shape[1:]
    for xi in x:
        jac = torch.autograd.functional.jacobian(
            lambda v: fn(v.view(1, *shape)).reshape(-1), xi.reshape(-1))
        out.append(torch.linalg.slogdet(jac)[1])
    return torch.stack(out)


def compose_train(overrides: list[str], tmp_path: Path, shrink_model: bool = True):
    """The real ``configs/train.yaml``, composed as ``train.py`` would, writing into ``tmp_path``
    and sized to run in seconds (``shrink_model=False`` keeps the configured model)."""
    from hydra import compose, initialize_config_dir

    from flowgen.config import CONFIG_DIR

    model = ["model.levels=3", "model.steps=1", "model.hidden_channels=8"] if shrink_model else []
    tiny = [*model, "data.batch_size=16",
            "trainer.max_steps=4", "trainer.val_check_interval=2", "trainer.limit_val_batches=2",
            "trainer.accelerator=cpu", "optim.warmup_steps=2", "logger=csv", "run_name=test",
            f"paths.output_dir={tmp_path / 'out'}", f"paths.checkpoint_dir={tmp_path / 'ckpt'}"]
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=tiny + overrides)


def trained_like(model_cls, config: dict, scale: float = 0.1):
    """A float64 model in a generic state: one training-mode forward on random images (ActNorm's
    and batch norm's data-dependent state), then every parameter perturbed; ``(model in eval
    mode, those images)``."""
    model = model_cls(**config).double()
    x = torch.rand(3, *config["event_shape"],
                   dtype=torch.float64) - 0.5
    model.train()
    model(x)
    perturb_(model, scale)
    return model.eval(), x


def flat(zs: list[torch.Tensor]) -> torch.Tensor:
    """Latents per level -> one ``[B, D]`` tensor."""
    return torch.cat([z.flatten(1) for z in zs], 1)
