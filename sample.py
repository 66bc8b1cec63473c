"""Sample from a checkpoint: ``python sample.py ckpt=checkpoints/<run>/last.ckpt [key=value ...]``.

    python sample.py ckpt=... n=64 temperature=0.7                 # grid-T0.70.png
    python sample.py ckpt=... temperature=[0.5,0.7,1.0]            # one grid per temperature
    python sample.py ckpt=... mode=interpolate method=slerp steps=8 # strip PNG + looping GIF
    python sample.py ckpt=... mode=interpolate endpoints=data indices=[3,7]
    python sample.py ckpt=... temperature=[0,0.5,1.0] layout=rows level_temperatures=[1,0.8,0.6]
    python sample.py ckpt=... mode=reconstruct indices=[0,1,2]     # or images=[a.png,b.png]
    python sample.py ckpt=... mode=manipulate attribute=1 indices=[0,1] alphas=[-1,0,1]
    python sample.py ckpt=... mode=evaluate seed=0 batch_size=64   # bpd -> evaluation.json

Pictures and settings.json go to ``out=...`` or ``outputs/<run>/<mode>-<time>/``; every option is
in ``configs/sample.yaml``, examples in ``docs/README.md``.
"""

import hydra
from omegaconf import DictConfig

from flowgen.cli import exit_with_error, quiet_console, user_error
from flowgen.config import CONFIG_DIR  # also registers the ${project_root:} resolver
from flowgen.sampling import run

quiet_console()  # the known third-party warnings, filtered precisely (flowgen/cli.py)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="sample")
def main(cfg: DictConfig) -> None:
    try:
        written = run(cfg)
    except Exception as err:
        cause = user_error(err)
        if cause is None:
            raise  # a bug, not a bad input: keep the traceback
        exit_with_error(cause)
    for path in written:
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
