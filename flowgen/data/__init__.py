"""Data: datamodules yielding uint8 images, n_bits reduction, dequantisation, bits per dim."""

from flowgen.data.quantization import bits_per_dim, postprocess, preprocess

__all__ = ["bits_per_dim", "postprocess", "preprocess"]
