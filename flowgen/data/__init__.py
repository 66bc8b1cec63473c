"""Data: datamodules yielding uint8 images or 2-D toy vectors, n_bits reduction, dequantisation,
bits per dim. Datamodules live in :mod:`flowgen.data.datamodules` (images) and
:mod:`flowgen.data.vectors` (toys), imported from there: this package stays free of Lightning."""

from flowgen.data.quantization import bits_per_dim, postprocess, preprocess
from flowgen.data.toys import TOYS

__all__ = ["TOYS", "bits_per_dim", "postprocess", "preprocess"]
