"""Sampling from trained checkpoints: temperature grids, latent interpolations, reconstructions,
attribute edits and bits/dim evaluation."""

from flowgen.sampling.grid import sample_images
from flowgen.sampling.interpolate import interpolation_frames
from flowgen.sampling.run import load_checkpoint, run
from flowgen.sampling.settings import Settings, parse_settings

__all__ = ["Settings", "interpolation_frames", "load_checkpoint", "parse_settings",
           "run", "sample_images"]
