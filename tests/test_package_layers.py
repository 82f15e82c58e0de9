"""The package's import rules, read from the source with :mod:`ast` (nothing is imported):

(a) no import cycles between modules, counting imports inside functions (only ``if TYPE_CHECKING:`` is
    exempt: it never runs);
(b) no private name (``_x``) or private module imported from another subpackage;
(c) imports point down the layer order (``LAYERS``); modules of one subpackage import each other freely,
    ``testing`` may import anything, and so may the package root and its top-level shims;
(d) at most 12 modules at the package's top level;
(e) no import by string: ``importlib.import_module("llmcost_nb…")``, ``sys.modules["llmcost_nb…"]``
    (a move makes them silently find nothing).

The redesign of issue 15 removes today's violations in several steps, so this is a ratchet: ``ALLOWED``
lists the violations that still exist. The test fails on any violation not listed AND on any listed one
that is gone, so the list only shrinks; delete it when it is empty. ``python tests/test_package_layers.py``
prints the current violations in the allowlist's format.
"""

from __future__ import annotations

import ast
import functools
import sys
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "llmcost_nb"
ROOT = PACKAGE.name

# Rank of each subpackage (and of the top-level module errors.py): an import must point to a lower rank.
# Equal ranks are peers and may not import each other. The root and the other top-level modules (shims)
# may import anything.
LAYERS = {
    "errors": 0,
    "core": 1,
    "pricing": 2,
    "ledger": 3,
    "tracking": 4,
    "budget": 5,
    "analysis": 6,
    "experiments": 6,
    "recording": 6,
    "team": 6,
    "notebook": 7,
    "testing": 8,  # the fake provider, sample data and the demo: `llmcost sample` and `llmcost demo` use it
    "cli": 9,
}
MAX_TOP_LEVEL_MODULES = 12

# Violations allowed (entries "importer -> imported", modules relative to llmcost_nb, private names after a
# colon). The redesign removed all of them; an entry added here must say why, and the test fails once it is
# gone, so the list only shrinks.
ALLOWED: dict[str, set[str]] = {"cycles": set(), "private": set(), "layers": set(), "string_imports": set()}


@dataclass
class Module:
    name: str  # dotted, relative to the package: "" (root), "errors", "ledger", "ledger.sqlite"
    path: Path
    is_package: bool
    imports: list[tuple[str, list[str], int]] = field(default_factory=list)  # (target, names, line)
    string_imports: list[str] = field(default_factory=list)


def _dotted(package: Path, path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(package).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
                isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
            ):
                skip.update(id(n) for sub in node.body for n in ast.walk(sub))
    return skip


def _absolute(name: str) -> str | None:
    """``llmcost_nb.a.b`` → ``a.b`` (``llmcost_nb`` → ``""``); None outside the package."""
    if name == ROOT:
        return ""
    if name.startswith(ROOT + "."):
        return name[len(ROOT) + 1 :]
    return None


def _names_the_package(node: ast.AST | None) -> bool:
    """A string (or the start of an f-string) that names a module of the package, absolutely or relatively."""
    if isinstance(node, ast.JoinedStr) and node.values:
        node = node.values[0]
    return (isinstance(node, ast.Constant) and isinstance(node.value, str)
            and (node.value.startswith(".") or _absolute(node.value.split(".{")[0].rstrip(".")) is not None
                 or node.value == ROOT + "."))


def _is_sys_modules(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "modules" and (
        isinstance(node.value, ast.Name) and node.value.id == "sys")


def _string_import(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call) and node.args and _names_the_package(node.args[0]):
        func = node.func
        if (isinstance(func, ast.Attribute) and func.attr == "import_module") or (
            isinstance(func, ast.Name) and func.id in ("import_module", "__import__")
        ):
            return f"import_module({ast.unparse(node.args[0])})"
        if isinstance(func, ast.Attribute) and _is_sys_modules(func.value):
            return f"sys.modules.{func.attr}({ast.unparse(node.args[0])})"
    if isinstance(node, ast.Subscript) and _is_sys_modules(node.value) and _names_the_package(node.slice):
        return f"sys.modules[{ast.unparse(node.slice)}]"
    if (isinstance(node, ast.Compare) and len(node.comparators) == 1 and _is_sys_modules(node.comparators[0])
            and _names_the_package(node.left)):
        return f"{ast.unparse(node.left)} in sys.modules"
    return None


@functools.cache
def scan(package: Path = PACKAGE) -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for path in sorted(package.rglob("*.py")):
        name, is_package = _dotted(package, path)
        modules[name] = Module(name, path, is_package)
    for module in modules.values():
        tree = ast.parse(module.path.read_text(encoding="utf-8"), str(module.path))
        skip = _type_checking_nodes(tree)
        base = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
        base = [p for p in base if p]
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if (found := _string_import(node)) is not None:
                module.string_imports.append(found)
            if isinstance(node, ast.Import):
                for alias in node.names:
                    target = _absolute(alias.name)
                    if target is not None:
                        module.imports.append((target, [], node.lineno))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = base[: len(base) - (node.level - 1)]
                    target = ".".join(parts + (node.module.split(".") if node.module else []))
                else:
                    target = _absolute(node.module or "")
                if target is None or target not in modules:
                    continue
                names = [alias.name for alias in node.names]
                rest = []
                for imported in names:  # `from .pkg import sub` imports the submodule when there is one
                    sub = f"{target}.{imported}" if target else imported
                    if sub in modules:
                        module.imports.append((sub, [], node.lineno))
                    else:
                        rest.append(imported)
                if rest:
                    module.imports.append((target, rest, node.lineno))
    return modules


def graph(modules: dict[str, Module]) -> dict[str, set[str]]:
    return {m.name: {t for t, _, _ in m.imports if t != m.name} for m in modules.values()}


def strongly_connected(edges: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative: the sets of two or more modules that import each other in a loop."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


def subpackage(name: str) -> str:
    """The first component: "ledger" for ledger.sqlite, "charts" for the shim charts.py, "" for the root."""
    return name.split(".")[0]


def _private(part: str) -> bool:
    return part.startswith("_") and not part.startswith("__")


def _label(name: str) -> str:
    return name or ROOT


def violations(modules: dict[str, Module]) -> dict[str, set[str]]:
    edges = graph(modules)
    cycles = set()
    for component in strongly_connected(edges):
        for source in component:
            cycles.update(f"{_label(source)} -> {_label(target)}" for target in edges[source] & component)
    private, layers, strings = set(), set(), set()
    for module in modules.values():
        source_sub = subpackage(module.name)
        for target, names, _line in module.imports:
            target_sub = subpackage(target)
            if target == module.name or source_sub == target_sub:
                continue
            hidden = [n for n in names if _private(n)]
            if any(_private(part) for part in target.split(".")) or hidden:
                names_part = f": {', '.join(hidden)}" if hidden else ""
                private.add(f"{_label(module.name)} -> {_label(target)}{names_part}")
            source_rank = LAYERS.get(source_sub)  # None: the root or a top-level shim: may import anything
            if source_rank is None:
                continue
            target_rank = LAYERS.get(target_sub, max(LAYERS.values()) + 1)  # the root and shims are on top
            if target_rank >= source_rank:
                layers.add(f"{_label(module.name)} -> {_label(target)}")
        strings.update(f"{_label(module.name)}: {found}" for found in module.string_imports)
    return {"cycles": cycles, "private": private, "layers": layers, "string_imports": strings}


@functools.cache
def _current() -> dict[str, set[str]]:
    return violations(scan())


def _check(kind: str) -> None:
    found = _current()[kind]
    new = sorted(found - ALLOWED[kind])
    gone = sorted(ALLOWED[kind] - found)
    assert not new, f"new {kind} violation(s), not allowed: {new}"
    assert not gone, f"fixed, so remove from ALLOWED[{kind!r}] in tests/test_package_layers.py: {gone}"


def test_no_import_cycles():
    _check("cycles")


def test_no_private_imports_across_subpackages():
    _check("private")


def test_imports_point_down_the_layers():
    _check("layers")


def test_no_imports_by_string():
    _check("string_imports")


def test_every_subpackage_has_a_layer():
    modules = scan()
    subpackages = {m.name for m in modules.values() if m.is_package and m.name and "." not in m.name}
    assert subpackages <= LAYERS.keys(), f"give these a rank in LAYERS: {sorted(subpackages - LAYERS.keys())}"


def test_few_top_level_modules():
    top = sorted(m.name for m in scan().values() if m.name and "." not in m.name and not m.is_package)
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def test_the_rules_catch_what_they_are_for(tmp_path):
    """On a made-up package (a test that cannot fail is no test)."""
    files = {
        "__init__.py": "from .ledger import store\n",
        "core/__init__.py": "",
        "core/money.py": "def f():\n    from ..ledger.store import _rows\n",  # up, private, and a cycle
        "ledger/__init__.py": "",
        "ledger/store.py": "from ..core import money\nfrom ..core.money import f\n_rows = 1\n",
        "ledger/_io.py": "",
        "team/__init__.py": "import typing\nif typing.TYPE_CHECKING:\n    from ..notebook import w\n",
        "team/sync.py": "from ..ledger import _io\nfrom .. import __version__\n",
        "notebook/__init__.py": "",
        "notebook/w.py": "import sys\nfrom ..team import sync\nsys.modules['llmcost_nb.team.sync']\n",
        "testing/__init__.py": "from ..notebook import w\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert violations(scan(tmp_path)) == {
        "cycles": {"core.money -> ledger.store", "ledger.store -> core.money"},
        "private": {"core.money -> ledger.store: _rows", "team.sync -> ledger._io"},
        "layers": {"core.money -> ledger.store", "team.sync -> llmcost_nb"},
        "string_imports": {"notebook.w: sys.modules['llmcost_nb.team.sync']"},
    }


def test_the_scanner_sees_what_it_checks():
    """The rules catch what they are for, on made-up source (a test that cannot fail is no test)."""
    tree = ast.parse(
        "import sys, importlib\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    importlib.import_module('llmcost_nb.notebook')\n"
        "def f():\n"
        "    importlib.import_module('llmcost_nb.recording.replay')\n"
        "    sys.modules.get('llmcost_nb.ledger.journal')\n"
        "    return 'llmcost_nb.x' in sys.modules and sys.modules[f'llmcost_nb.{f}'] and sys.modules['os']\n"
    )
    skip = _type_checking_nodes(tree)
    found = [s for node in ast.walk(tree) if id(node) not in skip and (s := _string_import(node))]
    assert sorted(found) == [
        "'llmcost_nb.x' in sys.modules",
        "import_module('llmcost_nb.recording.replay')",
        "sys.modules.get('llmcost_nb.ledger.journal')",
        "sys.modules[f'llmcost_nb.{f}']",
    ]
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


if __name__ == "__main__":
    current = violations(scan())
    for kind, found in current.items():
        print(f"    {kind!r}: {{")
        for entry in sorted(found):
            print(f"        {entry!r},")
        print("    },")
    sys.exit(0)
