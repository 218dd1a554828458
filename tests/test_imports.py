"""The package's import structure: every module imports on its own, in a fresh interpreter state, and no
chain of module-level imports comes back to where it started (an import cycle).

Imports inside functions (the CLI's and the estimators' lazy imports) run after every module is loaded and
cannot form a cycle at import time, so only module-level ``import`` statements are edges here.
"""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import unrolled

PACKAGE_DIR = Path(unrolled.__file__).resolve().parent


def all_modules() -> list[str]:
    names = ["unrolled"]
    for info in pkgutil.walk_packages([str(PACKAGE_DIR)], prefix="unrolled."):
        names.append(info.name)
    return sorted(names)


def _source(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    return Path(spec.origin)


def module_level_imports(module: str, known: set[str]) -> set[str]:
    """The package's modules that ``module`` imports at module level (``from a import b``: ``a.b`` when that
    is a module, else ``a``); parents that Python imports on the way are not counted."""
    path = _source(module)
    if path.suffix != ".py":
        return set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    edges: set[str] = set()
    for node in tree.body:  # module level only, including imports under if/try at that level
        for stmt in ast.walk(node) if isinstance(node, (ast.If, ast.Try)) else [node]:
            if isinstance(stmt, ast.Import):
                edges.update(alias.name for alias in stmt.names if alias.name in known)
            elif isinstance(stmt, ast.ImportFrom):
                base = stmt.module or ""
                if stmt.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - stmt.level + 1] + ([base] if base else []))
                for alias in stmt.names:
                    target = f"{base}.{alias.name}"
                    if target in known:
                        edges.add(target)
                    elif base in known:
                        edges.add(base)
    edges.discard(module)
    return edges


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of the directed graph as a list of nodes (first = last), or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle():
    modules = all_modules()
    known = set(modules)
    graph = {module: module_level_imports(module, known) for module in modules}
    assert len(modules) > 50 and graph["unrolled.cli.classify"] >= {"unrolled.cli.common"}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"b"}}) is None


def test_every_module_imports_on_its_own():
    """Each module imported first, in an interpreter where no other module of the package is loaded yet
    (``unrolled.__main__`` is the ``python -m unrolled`` script: importing it runs the command)."""
    modules = [name for name in all_modules() if name != "unrolled.__main__"]
    script = (
        "import importlib, sys\n"
        "failed = []\n"
        f"for name in {modules!r}:\n"
        "    for loaded in [m for m in sys.modules if m == 'unrolled' or m.startswith('unrolled.')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as error:\n"
        "        failed.append(f'{name}: {type(error).__name__}: {error}')\n"
        "print('\\n'.join(failed))\n"
    )
    assert _run(script, timeout=300).strip() == ""


def test_import_unrolled_and_the_cli_entry_stay_light():
    """``import unrolled`` loads no NumPy; the command-line entry point loads only what its command needs."""
    script = (
        "import sys, unrolled\n"
        "assert 'numpy' not in sys.modules, 'import unrolled loaded numpy'\n"
        "import unrolled.cli\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('unrolled.'))\n"
        "print(' '.join(loaded))\n"
    )
    assert _run(script).split() == ["unrolled._lazy", "unrolled.cli", "unrolled.cli.common"]


def _run(script: str, timeout: int = 120) -> str:
    """The standard output of ``script`` run by a fresh interpreter, which must succeed."""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return result.stdout


# What a model's training needs and its prediction does not: a process that loads a classifier and predicts
# (``unrolled predict``) must not import these (each costs milliseconds of its start-up).
TRAINING_ONLY = ("unrolled.train", "unrolled.optim", "unrolled.distributed", "unrolled.memory", "unrolled.metrics",
                 "unrolled.models.transfer", "unrolled.text.embeddings", "unrolled.nn.attention", "unrolled.resume")


def test_predicting_imports_none_of_trainings_modules():
    """Nor numpy.ma (~13 ms), which NumPy imports on first use of np.ma, in np.unique for one."""
    script = (
        "import sys, unrolled\n"
        "from unrolled.cli import main\n"
        "code = main(['predict', 'I love this'])\n"
        "print(code, ' '.join(sorted(m for m in sys.modules if m.startswith(('unrolled', 'numpy.ma')))))\n"
    )
    code, *loaded = _run(script).split("\n")[-2].split()
    assert code == "0" and "unrolled.models.classifier" in loaded  # it did load a classifier and predict
    assert not set(TRAINING_ONLY) & set(loaded), sorted(set(TRAINING_ONLY) & set(loaded))
    assert "numpy.ma" not in loaded


def test_the_lazy_packages_export_what_they_list():
    """unrolled, unrolled.nn, unrolled.data and unrolled.text import their names on first use: each name in
    __all__ resolves to the object its module defines, and a wrong name is an AttributeError."""
    import importlib

    for package in ("unrolled", "unrolled.nn", "unrolled.data", "unrolled.text"):
        module = importlib.import_module(package)
        lazy = {name: where for name, where in module._LAZY.items()}
        assert set(lazy) <= set(module.__all__)
        for name in module.__all__:
            assert name in dir(module) and getattr(module, name) is not None
        for name, where in lazy.items():
            assert getattr(module, name) is getattr(importlib.import_module(f"{package}.{where}"), name)
        with pytest.raises(AttributeError, match="no attribute 'nope'"):
            module.nope  # noqa: B018
    from unrolled.text import tokenize  # the function, though its module has the same name (text/__init__.py)

    assert callable(tokenize) and tokenize("I love this") == ["i", "love", "this"]
