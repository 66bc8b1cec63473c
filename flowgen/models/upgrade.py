"""Checkpoints of older formats, read by today's models.

Format 1 (before the engine of issue 12: a model was a ``MultiScaleFlow``) recorded
``in_channels``/``image_size`` and Glow's ``memory`` in the model config, and kept the levels,
the top prior and the class head at the top of the model. Format 2 records ``event_shape``
(``memory`` is a training option now) and nests them in ``transform`` and ``head``. Layers whose
own parameter names changed rename them when loading (``_load_from_state_dict``).
"""

from __future__ import annotations

#: format-1 key prefixes (inside the model) -> format-2 ones
_MOVED = {"levels.": "transform.levels.", "top_prior.": "transform.top.",
          "classifier.": "head."}


def upgrade_config(config: dict, fmt: int) -> dict:
    """A model config of format ``fmt`` as today's constructors take it."""
    config = dict(config)
    if fmt < 2:
        config.pop("memory", None)
        if "in_channels" in config or "image_size" in config:
            c, s = config.pop("in_channels", 3), config.pop("image_size", 32)
            config["event_shape"] = [c, s, s]
    return config


def upgrade_weights(weights: dict, fmt: int, prefix: str = "model.") -> dict:
    """A state dict of format ``fmt`` (keys under ``prefix``) with today's key names."""
    if fmt >= 2:
        return weights
    upgraded = {}
    for key, value in weights.items():
        if key.startswith(prefix):
            inner = key[len(prefix):]
            for old, new in _MOVED.items():
                if inner.startswith(old):
                    inner = new + inner[len(old):]
                    break
            key = prefix + inner
        upgraded[key] = value
    return upgraded
