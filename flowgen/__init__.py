"""flowgen: normalizing flows trained with Lightning and Hydra, usable from Python.

``flowgen.load_model``, ``flowgen.to_images``, ``flowgen.from_pretrained`` and
``flowgen.save_pretrained`` (see :mod:`flowgen.api`) are imported on first use, so importing a
subpackage (``flowgen.flows``) does not pull in the rest.
"""

__version__ = "0.1.0"
__all__ = ["from_pretrained", "load_model", "save_pretrained", "to_images"]


def __getattr__(name: str):
    if name in __all__:
        from flowgen import api

        return getattr(api, name)
    raise AttributeError(f"module 'flowgen' has no attribute {name!r}")
