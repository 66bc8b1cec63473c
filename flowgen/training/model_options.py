"""``model.*`` options checked against the chosen architecture's constructor: every registered
architecture's arguments typed from its signature, and ranged here."""

from __future__ import annotations

import inspect

from omegaconf import DictConfig

from flowgen.checks import Bool, Choice, Int, Real, Text, nullable
from flowgen.flows.dense import VECTOR_TRANSFORMS
from flowgen.models import coupling_mlp, glow, maf, nice, realnvp
from flowgen.models.registry import MODELS
from flowgen.training.option_table import check_table

#: Sanity caps on model sizes: a 1x1 convolution 8192 wide alone holds 67M weights per step.
MAX_WIDTH, MAX_DEPTH, MAX_CLASSES = 8192, 1024, 2**20
#: Spline bins: at least 2 (one bin is the identity, whose network learns nothing).
BINS = Int(2, 1024)
TAIL_BOUND = Real(0, open_lo=True)


def _model_ranges() -> dict[type, dict[str, tuple[object, str]]]:
    """Per architecture, what its constructor's options may be beyond their types."""
    width, depth = Int(1, MAX_WIDTH), Int(1, MAX_DEPTH)
    big = "the caps keep the model in memory"
    classes = (Int(0, MAX_CLASSES), "0: unconditional")
    spline = {"bins": (BINS, "e.g. 8"), "tail_bound": (TAIL_BOUND, "e.g. 3: the spline's "
                                                       "interval [-B, B], identity outside")}
    image_spline = {"spline_bins": spline["bins"], "tail_bound": spline["tail_bound"]}
    autoregressive = {
        "layers": (depth, big), "hidden_features": (width, big), "hidden_layers": (depth, big),
        "transform": (Choice(maf.TRANSFORMS), ""), "permutation": (Choice(maf.PERMUTATIONS), ""),
        "norm": (Choice(maf.NORMS), ""), "num_classes": classes, **spline,
        "logit_alpha": (nullable(Real(0, 0.5, open_lo=True, open_hi=True)),
                        "images: e.g. 1e-6 (MNIST) or 0.05 (CIFAR-10); null for vectors")}
    return {
        glow.Glow: {
            "levels": (Int(1), ""), "steps": (depth, big), "hidden_channels": (width, big),
            "coupling": (Choice(tuple(glow.COUPLINGS)), ""),
            "coupling_scale": (Choice(tuple(glow.COUPLING_SCALES)), ""),
            "permutation": (Choice(tuple(glow.PERMUTATIONS)), ""),
            "split_prior": (Choice(glow.SPLIT_PRIORS), ""),
            "split_scale": (Choice(glow.SPLIT_SCALES), ""),
            "num_classes": classes, **image_spline},
        realnvp.RealNVP: {
            "levels": (Int(1), ""), "hidden_channels": (width, big), "res_blocks": (depth, big),
            "norm": (Choice(tuple(realnvp.NORMS)), ""), "prior": (Choice(realnvp.PRIORS), ""),
            "coupling": (Choice(realnvp.COUPLINGS), ""), **image_spline},
        nice.NICE: {
            "couplings": (depth, big), "hidden_features": (width, big),
            "hidden_layers": (depth, big), "prior": (Choice(nice.PRIORS), "")},
        coupling_mlp.CouplingMLP: {
            "couplings": (depth, big), "hidden_features": (width, big),
            "hidden_layers": (depth, big), "transform": (Choice(VECTOR_TRANSFORMS), ""),
            "num_classes": classes, **spline},
        maf.MAF: autoregressive,
        maf.IAF: autoregressive,
    }


#: A constructor annotation -> the spec of its type (ranges come from ``_model_ranges``).
BY_ANNOTATION = {"int": Int(), "float": Real(), "bool": Bool(), "str": Text(),
                 "bool | None": nullable(Bool()), "int | None": nullable(Int()),
                 "float | None": nullable(Real())}
#: Sized from the data by ``build``, not user options.
FROM_DATA = ("in_channels", "image_size", "event_shape")
#: Model options that became training options: key -> the top-level key now.
MOVED = {"memory": "memory"}


def model_options(cls: type) -> dict[str, tuple[object, str]]:
    """Every user option of architecture ``cls``: the signature's type, narrowed by its range."""
    ranges = _model_ranges().get(cls, {})
    options = {}
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name in ("self", *FROM_DATA, *MOVED) or param.kind in (param.VAR_KEYWORD,
                                                           param.VAR_POSITIONAL):
            continue
        options[name] = ranges.get(name) or (BY_ANNOTATION.get(str(param.annotation), None), "")
    return options


def check_model(cfg: DictConfig) -> None:
    """model.* against the constructor of the registered architecture ``model._target_`` names
    (another class: left to Hydra)."""
    node = cfg.get("model")
    if not isinstance(node, DictConfig):
        return
    target = str(node.get("_target_", ""))
    cls = next((c for c in MODELS.values()
                if target.startswith("flowgen.") and target.rsplit(".", 1)[-1] == c.__name__),
               None)
    if cls is None:
        return
    options = model_options(cls)
    unknown = [k for k in node if not str(k).startswith("_") and k not in options
               and k not in FROM_DATA and k not in MOVED]
    if unknown:
        raise ValueError(f"model.{unknown[0]} is not an option of {cls.__name__}: its options "
                         f"are {', '.join(options)}")
    check_table(cfg, options, "model.")
