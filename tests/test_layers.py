"""The package's structure stays as built: imports only point down.

Read from the source with ``ast`` (nothing is imported):

* no import cycle among gradlab's modules (function-level imports count: a cycle broken
  by moving an import into a function is still a cycle);
* no ``from gradlab.x import _name`` of another module's private name, and no
  ``module._name`` attribute reached through an imported gradlab module (a leading
  underscore means "this module only"; private *modules* such as ``gradlab._cost`` may be
  imported by name and their public names used);
* function-level imports only for the heavy optional libraries (jax, scipy, matplotlib,
  hypothesis and what loads them lazily), and, inside the command line, for ``--help``
  speed.
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "gradlab"

#: Libraries that may be imported inside a function: they are slow to import (jax,
#: matplotlib), or needed only by a few functions (scipy, hypothesis, tqdm).
LAZY_LIBRARIES = frozenset({"jax", "jaxlib", "scipy", "matplotlib", "hypothesis", "tqdm"})


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = ("gradlab",) + path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _resolve(module: str, level: int, current: str) -> str:
    if not level:
        return module or ""
    base = current.split(".") if _is_package(current) else current.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


class _Imports(ast.NodeVisitor):
    """Every import of a module, with whether it sits inside a function."""

    def __init__(self, name: str):
        self.name = name
        self.depth = 0
        self.found = []  # (target module, imported name or None, line, in_function)
        self.aliases = {}  # local name -> gradlab module it is bound to

    def _function(self, node):
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_Import(self, node):
        for alias in node.names:
            self.found.append((alias.name, None, node.lineno, self.depth > 0))
            if alias.name in MODULES:
                self.aliases[alias.asname or alias.name.split(".")[0]] = alias.asname and alias.name or "gradlab"

    def visit_ImportFrom(self, node):
        module = _resolve(node.module, node.level, self.name)
        for alias in node.names:
            self.found.append((module, alias.name, node.lineno, self.depth > 0))
            full = f"{module}.{alias.name}"
            if full in MODULES:
                self.aliases[alias.asname or alias.name] = full


def _scan(name: str):
    tree = ast.parse(MODULES[name].read_text(), filename=str(MODULES[name]))
    v = _Imports(name)
    v.visit(tree)
    return tree, v


SCANS = {name: _scan(name) for name in MODULES}


def _targets(module: str, imported: str | None) -> list[str]:
    """The gradlab modules an import statement loads (its own, not the parents' packages)."""
    if not module.startswith("gradlab") or module.split(".")[0] != "gradlab":
        return []
    if imported is not None and f"{module}.{imported}" in MODULES:
        return [f"{module}.{imported}"]
    return [module] if module in MODULES else []


def _graph() -> dict[str, set[str]]:
    graph = {}
    for name, (_, v) in SCANS.items():
        edges = set()
        for module, imported, _, _ in v.found:
            edges.update(t for t in _targets(module, imported) if t != name)
        graph[name] = edges
    return graph


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_scan_sees_the_package():
    # A guard for the guards below: they must be looking at gradlab's real modules.
    assert {"gradlab", "gradlab._cost", "gradlab.network", "gradlab.check", "gradlab.cli"} <= set(MODULES)
    assert "gradlab._cost" in _graph()["gradlab.network"]


def test_there_is_no_import_cycle():
    cycles = _cycles(_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _private_imports():
    bad = []
    for name, (tree, v) in SCANS.items():
        for module, imported, line, _ in v.found:
            if (imported and imported.startswith("_") and not imported.startswith("__")
                    and module.split(".")[0] == "gradlab" and module != name
                    and f"{module}.{imported}" not in MODULES):
                bad.append(f"{name}:{line}: from {module} import {imported}")
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in v.aliases and node.attr.startswith("_")
                    and not node.attr.startswith("__")
                    and f"{v.aliases[node.value.id]}.{node.attr}" not in MODULES):
                bad.append(f"{name}:{node.lineno}: {node.value.id}.{node.attr}")
    return bad


def test_no_module_uses_another_modules_private_names():
    bad = _private_imports()
    assert not bad, "private names used across modules:\n" + "\n".join(bad)


def test_function_level_imports_are_only_for_lazy_libraries_or_the_command_line():
    bad = []
    for name, (_, v) in SCANS.items():
        if name == "gradlab.cli" or name.startswith("gradlab.cli."):
            continue
        for module, _, line, in_function in v.found:
            if in_function and module.split(".")[0] not in LAZY_LIBRARIES:
                bad.append(f"{name}:{line}: import of {module} inside a function")
    assert not bad, "function-level imports:\n" + "\n".join(bad)


@pytest.mark.parametrize("limit, where", [(900, ""), (450, "gradlab.check")])
def test_no_module_is_too_long(limit, where):
    long = [f"{n}: {len(p.read_text().splitlines())} lines" for n, p in MODULES.items()
            if n.startswith(where) and len(p.read_text().splitlines()) > limit]
    assert not long, f"modules over {limit} lines:\n" + "\n".join(long)


# ------------------------------------------------------------------ the documented layout

ARCHITECTURE = ROOT.parent / "docs" / "architecture.md"


def _documented_layers() -> list[list[str]]:
    """The module groups docs/architecture.md's tree names at the start of its lines, in the
    order it lists them (``_validate.py _files.py`` is one group; ``check/`` the package and
    all its modules). The package's ``__init__`` and ``__main__`` sit on top of everything
    and are left out."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    tree = text[text.index("```\ngradlab/\n") + 4:]
    tree = tree[:tree.index("```")]
    layers = []
    for line in tree.splitlines()[1:]:
        if not line.startswith("  ") or line.startswith("   "):
            continue  # a continuation line of a description
        names = []
        for word in re.split(r"\s{2,}", line.strip())[0].split():
            if word.endswith(".py") and word not in ("__init__.py", "__main__.py"):
                names.append("gradlab." + word[:-3])
            elif word.endswith("/") and "gradlab." + word[:-1] in MODULES:
                package = "gradlab." + word[:-1]
                names += [m for m in MODULES if m == package or m.startswith(package + ".")]
        if names:
            layers.append(names)
    return layers


def test_the_documented_tree_names_every_module_once():
    listed = [m for layer in _documented_layers() for m in layer]
    assert len(listed) == len(set(listed)), sorted(m for m in listed if listed.count(m) > 1)
    missing = sorted(set(MODULES) - set(listed) - {"gradlab", "gradlab.__main__"})
    assert not missing, f"docs/architecture.md's tree does not name: {missing}"


def test_the_documented_tree_lists_the_layers_bottom_up():
    # Each module imports only from modules listed above it (or beside it, on its line).
    graph, position = _graph(), {}
    for i, layer in enumerate(_documented_layers()):
        position.update(dict.fromkeys(layer, i))
    upward = [f"{m} (listed {position[m]}) imports {t} (listed {position[t]})"
              for m in position for t in sorted(graph[m]) if t in position and position[t] > position[m]]
    assert not upward, "docs/architecture.md lists a module below one it imports:\n" + "\n".join(upward)
