"""Train a normalizing flow: ``python train.py [group=option] [key=value ...]`` (see README)."""

import hydra
from omegaconf import DictConfig

from flowgen.cli import exit_with_error, quiet_console, user_error
from flowgen.config import CONFIG_DIR
from flowgen.training import train

quiet_console()  # the known third-party warnings, filtered precisely (flowgen/cli.py)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    try:
        metrics = train(cfg)
    except Exception as err:
        cause = user_error(err)
        if cause is None:
            raise  # a bug, not a bad input: keep the traceback
        exit_with_error(cause)
    print(f"finished after {metrics['step']} steps: " + ", ".join(
        f"{k} {v:.4f}" for k, v in metrics.items() if k.endswith(("bpd", "nll", "nll_gap"))))
    for key in ("last_checkpoint", "best_checkpoint"):
        if metrics.get(key):
            print(f"{key.replace('_', ' ')}: {metrics[key]}")
    return metrics.get(cfg.task.monitor)  # the value a -m sweep optimises


if __name__ == "__main__":
    main()
