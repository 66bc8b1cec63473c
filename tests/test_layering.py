"""The layer order of ``flowgen/`` (issue 12, acceptance 5), read from the source: the AST of
every module, imports inside functions and ``TYPE_CHECKING`` blocks included (a deferred import is
still a dependency).

Lowest first: ``errors`` < ``distributions/`` (base distributions: plain torch, importing
nothing of flowgen, so the priors inside flows, ``Split`` and ``LearnedPrior``, can use them) <
``flows/`` < ``models/`` (plain torch) < ``objectives/`` < ``data/`` (knows no model) < the shared
helpers (``diagnostics``, ``latent_paths``, ``plots``) < ``training/`` | ``sampling/``, which never
import each other. ``checks``, ``config``, ``cli`` and ``perf`` serve the entry points (option
checks read OmegaConf nodes), so the layers below cannot use them. Nothing imports the CLIs
(``train.py``, ``sample.py``), and the module graph has no cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "flowgen"
#: top-level name of a module -> its layer
LAYER_OF = {"errors": "base", "checks": "app", "__init__": "api", "api": "api", "entry": "entry",
            "flows": "flows", "distributions": "distributions", "models": "models",
            "objectives": "objectives", "data": "data",
            "diagnostics": "shared", "latent_paths": "shared", "plots": "shared",
            "config": "app", "cli": "app", "perf": "app",
            "training": "training", "sampling": "sampling"}
BELOW_SHARED = {"base", "flows", "distributions", "models", "objectives", "data", "shared"}
#: layer -> the layers its modules may import
ALLOWED = {
    "base": {"base"},
    "distributions": {"base", "distributions"},
    "flows": {"base", "distributions", "flows"},
    "models": {"base", "flows", "distributions", "models"},
    "objectives": {"base", "flows", "distributions", "models", "objectives"},
    "data": {"base", "objectives", "data"},
    "shared": BELOW_SHARED,
    "app": {"base", "app"},
    "training": BELOW_SHARED | {"app", "training"},
    "sampling": BELOW_SHARED | {"app", "sampling"},
    "api": BELOW_SHARED | {"api"},  # flowgen.load_model & co: the Python face of the package
    "entry": BELOW_SHARED | {"app", "training", "sampling", "entry"},  # the two commands
}
#: layers that must stay plain torch: usable without Lightning or Hydra
NO_FRAMEWORK = {"base", "flows", "distributions", "models", "objectives", "shared"}
FRAMEWORKS = ("lightning", "pytorch_lightning", "hydra", "omegaconf")
CLIS = ("train", "sample")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, name: str, known: set[str]) -> list[tuple[str, int]]:
    """``(imported module, line)`` for every import in ``path`` (any depth), resolved to a known
    flowgen module where it names one (``from pkg import submodule`` -> the submodule); other
    modules by their full dotted name."""
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(_nearest(a.name, known), node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package, up level - 1
                package = name.split(".") if is_package else name.split(".")[:-1]
                package = package[:len(package) - (node.level - 1)]
                base = ".".join(package + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.append((full if full in known else _nearest(base, known), node.lineno))
    return found


def _nearest(dotted: str, known: set[str]) -> str:
    """The longest known module that is ``dotted`` or a package above it (else ``dotted``)."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in known:
            return ".".join(parts[:n])
    return dotted


def layer(module: str) -> str:
    parts = module.split(".")
    return LAYER_OF.get(parts[1] if len(parts) > 1 else "__init__", "unknown")


def import_graph() -> dict[str, list[tuple[str, int]]]:
    mods = modules()
    return {name: imports(path, name, set(mods)) for name, path in mods.items()}


def upward_imports(graph) -> list[str]:
    """Every import that breaks the layer order, as ``module:line -> imported (why)``."""
    bad = []
    for module, targets in graph.items():
        own = layer(module)
        for target, line in targets:
            where = f"{module}:{line} -> {target}"
            if target.split(".")[0] in CLIS:
                bad.append(f"{where} (nothing imports the CLIs)")
            elif target.startswith("flowgen."):
                if layer(target) not in ALLOWED.get(own, set()):
                    bad.append(f"{where} ({own}/ may not import {layer(target)}/)")
            elif own in NO_FRAMEWORK and target.split(".")[0] in FRAMEWORKS:
                bad.append(f"{where} ({own}/ is plain torch)")
    return bad


def cycles(graph) -> list[list[str]]:
    """The strongly connected components of more than one module (or a module importing
    itself), by Tarjan's algorithm."""
    edges = {m: sorted({t for t, _ in ts if t in graph}) for m, ts in graph.items()}
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in edges[v]:
                found.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    return found


@pytest.fixture(scope="module")
def graph():
    return import_graph()


def test_every_module_has_a_layer(graph):
    assert [m for m in graph if layer(m) == "unknown"] == []


def test_no_upward_import(graph):
    bad = upward_imports(graph)
    assert not bad, "imports against the layer order:\n" + "\n".join(bad)


def test_no_import_cycle(graph):
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_walk_sees_what_it_must():
    """The checker itself: relative, nested and deferred imports resolve, a cycle is found."""
    fake = {"flowgen.flows.a": [("flowgen.training.module", 3)],
            "flowgen.models.b": [("lightning", 1), ("flowgen.models.c", 2)],
            "flowgen.models.c": [("flowgen.models.b", 4)],
            "flowgen.sampling.d": [("train", 5)]}
    assert upward_imports(fake) == [
        "flowgen.flows.a:3 -> flowgen.training.module (flows/ may not import training/)",
        "flowgen.models.b:1 -> lightning (models/ is plain torch)",
        "flowgen.sampling.d:5 -> train (nothing imports the CLIs)"]
    assert cycles(fake) == [["flowgen.models.b", "flowgen.models.c"]]
    graph = import_graph()
    deferred = dict(graph["flowgen.training.module"])  # imported inside a method
    assert "flowgen.latent_paths" in deferred
