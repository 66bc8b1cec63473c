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
The same as the installed ``flowgen-sample`` (:mod:`flowgen.entry`).
"""

from flowgen.entry import sample_main

if __name__ == "__main__":
    sample_main()
