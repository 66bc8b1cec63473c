"""Regenerate data/mnist5k.npz, the small MNIST subset embedded in the repo.

Train: the first 500 images of each class of the MNIST training set (kept in original order).
Val:   the first 1,000 images of the MNIST test set.
Images are zero-padded 2 px per side, 28x28 -> 32x32, so three 2x squeezes divide evenly.

Usage (from the repo root):
    .venv/bin/python data/make_mnist5k.py [--src SRC.npz] [--out OUT.npz]
"""

import argparse
import hashlib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PER_CLASS = 500
N_TEST = 1000
PAD = 2


def build(src: Path) -> dict[str, np.ndarray]:
    with np.load(src) as f:
        x_train, y_train = f["x_train"], f["y_train"].astype(np.int64)
        x_test, y_test = f["x_test"], f["y_test"].astype(np.int64)
    # Sorting the union of per-class picks keeps the original index order (not class-blocked).
    idx = np.sort(np.concatenate([np.flatnonzero(y_train == c)[:PER_CLASS] for c in range(10)]))
    pad = ((0, 0), (PAD, PAD), (PAD, PAD))
    return {
        "x_train": np.pad(x_train[idx], pad).astype(np.uint8),
        "y_train": y_train[idx],
        "x_test": np.pad(x_test[:N_TEST], pad).astype(np.uint8),
        "y_test": y_test[:N_TEST],
    }


def content_sha256(arrays: dict[str, np.ndarray]) -> str:
    # The .npz bytes depend on the zlib build; this digest of the arrays does not.
    h = hashlib.sha256()
    for key in ("x_train", "y_train", "x_test", "y_test"):
        h.update(np.ascontiguousarray(arrays[key]).tobytes())
    return h.hexdigest()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--src", type=Path, default=HERE.parent.parent / "shared/datasets/mnist.npz")
    p.add_argument("--out", type=Path, default=HERE / "mnist5k.npz")
    args = p.parse_args()
    arrays = build(args.src)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v.shape} {v.dtype}" for k, v in arrays.items()))
    print(f"file sha256:    {hashlib.sha256(args.out.read_bytes()).hexdigest()}")
    print(f"content sha256: {content_sha256(arrays)}")


if __name__ == "__main__":
    main()
