"""The import contract of ``zoomrl``: subpackages by concern, dependencies that point one way.

Every import of ours in ``zoomrl/`` is read with :mod:`ast` (module level and inside functions alike: a lazy import
is still a dependency) and checked against this table. A row's package may import only the packages in its row.

==============  ======================================  ============================================================
package         may import (of ours)                    why
==============  ======================================  ============================================================
core            nothing                                 geometry, config, files, checkpoints, caches: plain NumPy
data            core                                    datasets and images
vision          core, data                              backbones and feature models (descriptors of windows)
envs            core, data, vision                      environments: a window's descriptor comes from vision
agents          core                                    networks and learners see arrays, never images or envs
eval            core, data                              metrics and pictures
experiments     core, data, vision, envs, agents, eval  the runs: the one layer that wires the others together
__main__        experiments                             ``python -m zoomrl``
zoomrl          nothing                                 the package's ``__init__`` (its version)
==============  ======================================  ============================================================

Within ``experiments``: a family package (``experiments/<family>/``) imports no other family, and the shared
modules (``experiments/*.py``: cli, common, dqn_loop) import no family; ``cli`` finds them by name through
:mod:`importlib`. Nothing outside ``experiments`` and ``__main__`` imports ``experiments`` (the table says so).

Frameworks: ``core``, ``envs`` and ``eval`` import none of Keras, TensorFlow, JAX or PyTorch, anywhere
(``core.tblog`` excepted: it writes TensorBoard files through TensorFlow or PyTorch, imported when first used);
``data`` may reach ``keras.datasets`` as a downloader inside a function, never at module level.

And no two modules import each other, directly or through others (no cycle in the module graph).

The checker is tested on a small synthetic package too, so that a checker that finds nothing fails.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "zoomrl"

ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "data": {"core"},
    "vision": {"core", "data"},
    "envs": {"core", "data", "vision"},
    "agents": {"core"},
    "eval": {"core", "data"},
    "experiments": {"core", "data", "vision", "envs", "agents", "eval"},
    "__main__": {"experiments"},
    "": set(),  # zoomrl/__init__.py
}
FRAMEWORKS = {"keras", "tensorflow", "jax", "torch"}
NO_FRAMEWORK = {"core", "envs", "eval"}
FRAMEWORK_EXCEPTIONS = {"zoomrl.core.tblog"}
NO_FRAMEWORK_AT_MODULE_LEVEL = {"data"}


def modules(root: Path) -> dict[str, Path]:
    """Dotted name -> file, for every ``.py`` under ``root`` (a package directory)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = (root.name, *path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: set[str]) -> Iterator[tuple[str, int, bool]]:
    """``(imported module, line, at module level)`` for every import in the file. ``from a import b`` names the
    module ``a.b`` when that is one of ``known``, else ``a``; relative imports are resolved against ``name``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    nested = {
        id(node)
        for fn in ast.walk(tree)
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
        for node in ast.walk(fn)
        if isinstance(node, (ast.Import, ast.ImportFrom))
    }
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, id(node) not in nested
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                yield (sub if sub in known else target), node.lineno, id(node) not in nested


def layer(name: str) -> str:
    """The top-level subpackage of a dotted name inside the package (``""`` for the package itself)."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def family(name: str, families: set[str]) -> str | None:
    """The family package (``<pkg>.experiments.<family>``, one of ``families``) that holds ``name``, else None."""
    candidate = ".".join(name.split(".")[:3])
    return candidate if candidate in families else None


def graph(root: Path) -> tuple[dict[str, set[str]], list[str]]:
    """The module graph of our own imports, and every breach of the contract (one line each)."""
    mods = modules(root)
    known = set(mods)
    ours = root.name
    families = {
        m
        for m, p in mods.items()
        if p.name == "__init__.py" and m.count(".") == 2 and m.startswith(f"{ours}.experiments.")
    }
    edges: dict[str, set[str]] = {m: set() for m in mods}
    breaches = []
    for name, path in mods.items():
        src = layer(name)
        where = f"{path.relative_to(root.parent)}"
        for target, line, top in imports(name, path, known):
            head = target.split(".")[0]
            if head in FRAMEWORKS and src in NO_FRAMEWORK and name not in FRAMEWORK_EXCEPTIONS:
                breaches.append(f"{where}:{line}: {src} imports {target} (no framework in {src})")
            if head in FRAMEWORKS and src in NO_FRAMEWORK_AT_MODULE_LEVEL and top:
                breaches.append(f"{where}:{line}: {src} imports {target} at module level")
            if head != ours:
                continue
            dst = layer(target)
            if dst != src and dst not in ALLOWED.get(src, set()):
                allowed = ", ".join(sorted(ALLOWED.get(src, set())))
                breaches.append(
                    f"{where}:{line}: {src or ours} imports {target} "
                    f"({src or ours} may import {'only ' + allowed if allowed else 'nothing of ours'})"
                )
            if src == dst == "experiments":
                mine, theirs = family(name, families), family(target, families)
                if theirs is not None and mine != theirs:
                    breaches.append(f"{where}:{line}: {name} imports the family {theirs}")
            for candidate in (target, target.rpartition(".")[0]):
                if candidate in known and candidate != name:
                    edges[name].add(candidate)
                    break
    return edges, breaches


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
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
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_every_subpackage_is_in_the_table():
    subpackages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    assert subpackages <= set(ALLOWED), f"add {sorted(subpackages - set(ALLOWED))} to the table in this docstring"


def test_imports_follow_the_table():
    _, breaches = graph(ROOT)
    assert not breaches, "import contract broken:\n" + "\n".join(breaches)


def test_no_import_cycles():
    edges, _ = graph(ROOT)
    assert sum(len(e) for e in edges.values()) > 100  # the graph was read (about 200 edges at the time of writing)
    found = cycles(edges)
    assert not found, "modules that import each other: " + "; ".join(" <-> ".join(c) for c in found)


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"core/geometry.py": "from pkg.agents import agent\n"}, "core imports pkg.agents.agent"),
        ({"agents/agent.py": "def f():\n    from pkg.vision.features import Request\n"}, "agents imports pkg.vision"),
        ({"envs/env.py": "from ..experiments import cli\n"}, "envs imports pkg.experiments.cli"),
        ({"core/seeding.py": "def f():\n    import keras\n"}, "no framework in core"),
        ({"data/digits.py": "import keras\n"}, "data imports keras at module level"),
        ({"experiments/common.py": "from pkg.experiments.fam_a import train\n"}, "the family pkg.experiments.fam_a"),
        ({"experiments/fam_b/train.py": "import pkg.experiments.fam_a.train\n"}, "the family pkg.experiments.fam_a"),
    ],
)
def test_the_checker_reports_a_forbidden_import(tmp_path, files, expected):
    base = {
        f"{p}/__init__.py": ""
        for p in (
            "core",
            "data",
            "vision",
            "envs",
            "agents",
            "eval",
            "experiments",
            "experiments/fam_a",
            "experiments/fam_b",
        )
    }
    base.update({"__init__.py": "", "agents/agent.py": "", "experiments/cli.py": "", "experiments/fam_a/train.py": ""})
    root = _write(tmp_path / "pkg", {**base, **files})
    _, breaches = graph(root)
    assert any(expected in b for b in breaches), breaches
    _, clean = graph(_write(tmp_path / "clean" / "pkg", base))
    assert clean == []


def test_the_checker_finds_a_cycle_and_allows_lazy_downloads(tmp_path):
    root = _write(
        tmp_path / "pkg",
        {
            "__init__.py": "",
            "core/__init__.py": "",
            "data/__init__.py": "",
            "core/config.py": "def save():\n    from pkg.core.io import write\n",
            "core/io.py": "from pkg.core import config\n",
            "data/digits.py": "def load():\n    import keras\n",
        },
    )
    edges, breaches = graph(root)
    assert breaches == []
    assert cycles(edges) == [["pkg.core.config", "pkg.core.io"]]
