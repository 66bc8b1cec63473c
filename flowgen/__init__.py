"""flowgen: normalizing-flow image generators (Glow) trained with Lightning and Hydra."""

__version__ = "0.1.0"
