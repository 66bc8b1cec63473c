"""The two commands, ``flowgen-train`` and ``flowgen-sample`` (console scripts of the installed
package; ``python train.py`` / ``python sample.py`` in a checkout are shims over them).

Hydra composes the configs (``configs/`` of the checkout, or the copy inside the package) and
flowgen does the work: a bad input ends the command with one ``error: ...`` line, exit code 2.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from flowgen.cli import exit_with_error, quiet_console, user_error
from flowgen.config import CONFIG_DIR  # also registers the configs' resolvers

quiet_console()  # the known third-party warnings, filtered precisely (flowgen/cli.py)


def _run(work, cfg: DictConfig):
    try:
        return work(cfg)
    except Exception as err:
        cause = user_error(err)
        if cause is None:
            raise  # a bug, not a bad input: keep the traceback
        exit_with_error(cause)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def train_main(cfg: DictConfig) -> float | None:
    """``flowgen-train [group=option ...] [key=value ...]``: train a flow (see the README)."""
    from flowgen.training import train

    metrics = _run(train, cfg)
    print(f"finished after {metrics['step']} steps: " + ", ".join(
        f"{k} {v:.4f}" for k, v in metrics.items() if k.endswith(("bpd", "nll", "nll_gap"))))
    for key in ("last_checkpoint", "best_checkpoint"):
        if metrics.get(key):
            print(f"{key.replace('_', ' ')}: {metrics[key]}")
    return metrics.get(cfg.task.monitor)  # the value a -m sweep optimises


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="sample")
def sample_main(cfg: DictConfig) -> None:
    """``flowgen-sample ckpt=... [key=value ...]``: pictures and bits/dim from a checkpoint."""
    from flowgen.sampling import run

    for path in _run(run, cfg):
        print(f"wrote {path}")
