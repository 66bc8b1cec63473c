"""Train a normalizing flow: ``python train.py [group=option] [key=value ...]`` (see README).
The same as the installed ``flowgen-train`` (:mod:`flowgen.entry`)."""

from flowgen.entry import train_main

if __name__ == "__main__":
    train_main()
