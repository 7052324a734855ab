"""The code's seams, read from the source with `ast` (nothing under test is imported).

(a) The module import graph of `neurocomp` (neurocomp/) and `neurocomp.targets` (targets/) is acyclic. Imports
    inside functions count (a lazy import that dodges a cycle is still one); imports under `if TYPE_CHECKING:`
    do not. Importing `a.b.c` also runs the package `a.b` (and `a`), so that is an edge too, except to a
    package that holds the importer (Python has started it before the importer runs).
(b) Every `__init__.py` holds only a docstring, imports (re-exports) and `__all__`.
(c) Generic code reaches a target family through its hooks (neurocomp.target loads them), never by importing
    neurocomp.targets.* itself.
(d) No module imports another's private (underscore) names: what a module lends to others is public.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"neurocomp": ROOT / "neurocomp", "neurocomp.targets": ROOT / "targets"}
INIT_METADATA = {"__version__"}   # neurocomp/__init__.py states the version (cli --version reads it)


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the two packages."""
    out: dict[str, Path] = {}
    for prefix, base in PACKAGES.items():
        for path in sorted(base.rglob("*.py")):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join([prefix, *parts])] = path
    return out


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported_names(tree: ast.Module, module: str, is_package: bool) -> list[tuple[str, str | None]]:
    """(module, name or None) for every import anywhere in the tree, relative imports resolved."""
    found: list[tuple[str, str | None]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                for stmt in child.orelse:
                    visit_one(stmt)
            else:
                visit_one(child)

    def visit_one(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.extend((alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".") if is_package else module.split(".")[:-1]
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            found.extend((base, alias.name) for alias in node.names)
        else:
            visit(node)

    visit(tree)
    return found


def import_graph(files: dict[str, Path] | None = None) -> dict[str, set[str]]:
    """Module -> the modules of the two packages that importing it runs."""
    files = files or module_files()
    graph: dict[str, set[str]] = {m: set() for m in files}
    for module, path in files.items():
        for base, name in imported_names(ast.parse(path.read_text(encoding="utf-8")), module, path.name == "__init__.py"):
            target = f"{base}.{name}" if name and f"{base}.{name}" in files else base
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                dep = ".".join(parts[:i])
                holds_importer = module == dep or module.startswith(dep + ".")
                if dep in files and not (holds_importer and i < len(parts)) and dep != module:
                    graph[module].add(dep)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle as [a, b, ..., a], or [] when the graph is acyclic (iterative depth-first search)."""
    state: dict[str, int] = {}   # 1: on the current path, 2: done
    for root in sorted(graph):
        if root in state:
            continue
        path, stack = [root], [iter(sorted(graph[root]))]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return []


def test_the_graph_is_read_from_the_source():
    graph = import_graph()
    assert len(graph) > 100 and sum(map(len, graph.values())) > 300
    assert {"neurocomp.quantize", "neurocomp.partition", "neurocomp.place", "neurocomp.route"} <= graph["neurocomp.compiler"]
    assert "neurocomp.compiler" in graph["neurocomp.cli"]                       # a lazy import inside a function
    assert "neurocomp.ir" in graph["neurocomp.compiler"]                        # the package of an imported module
    assert "neurocomp.targets.truenorth.quant" in graph["neurocomp.targets.truenorth.legalize"]
    assert "neurocomp.targets.truenorth" not in graph["neurocomp.targets.truenorth.legalize"]   # its own package


def test_imports_under_type_checking_do_not_count():
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import a\nelse:\n    import b\n"
                     "def f():\n    from .c import d\n")
    assert imported_names(tree, "p.m", False) == [("typing", "TYPE_CHECKING"), ("b", None), ("p.c", "d")]


def test_find_cycle_reports_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


def test_the_import_graph_is_acyclic():
    cycle = find_cycle(import_graph())
    assert cycle == [], "import cycle: " + " -> ".join(cycle)


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph between top-level units: neurocomp.<name> and neurocomp.targets.<family>."""
    def unit(module: str) -> str:
        parts = module.split(".")
        return ".".join(parts[:3] if parts[1:2] == ["targets"] else parts[:2])

    out: dict[str, set[str]] = {}
    for module, deps in graph.items():
        out.setdefault(unit(module), set()).update(unit(d) for d in deps if unit(d) != unit(module))
    return out


def test_packages_are_acyclic_too():
    packages = package_graph(import_graph())
    assert {"neurocomp.quantize", "neurocomp.partition"} <= packages["neurocomp.compiler"]
    assert "neurocomp.backends" in packages["neurocomp.targets.truenorth"]   # a family may use generic code
    cycle = find_cycle(packages)
    assert cycle == [], "package cycle: " + " -> ".join(cycle)


def _init_files() -> list[Path]:
    return sorted(p for base in PACKAGES.values() for p in base.rglob("__init__.py"))


def init_problems(path: Path, root: Path = ROOT) -> list[str]:
    """Statements of an __init__.py that are not a docstring, an import or `__all__`."""
    body = ast.parse(path.read_text(encoding="utf-8")).body
    problems = []
    for k, stmt in enumerate(body):
        if k == 0 and isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
            continue
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(stmt, ast.Assign) and all(isinstance(t, ast.Name) for t in stmt.targets):
            names = {t.id for t in stmt.targets}
            if names == {"__all__"} or (path == root / "neurocomp" / "__init__.py" and names <= INIT_METADATA):
                continue
        problems.append(f"{path.relative_to(root)}:{stmt.lineno}: {type(stmt).__name__}")
    return problems


def test_init_files_only_re_export():
    assert len(_init_files()) >= 15
    problems = [p for path in _init_files() for p in init_problems(path)]
    assert problems == []


def test_init_check_catches_logic(tmp_path):
    bad = tmp_path / "__init__.py"
    bad.write_text('"""Doc."""\nimport os\n__all__ = ["os"]\nX = 1\n\n\ndef f():\n    pass\n')
    assert init_problems(bad, tmp_path) == ["__init__.py:4: Assign", "__init__.py:7: FunctionDef"]


def test_all_names_what_the_package_imports():
    for path in _init_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        bound = {alias.asname or alias.name.split(".")[0] for stmt in tree.body
                 if isinstance(stmt, (ast.Import, ast.ImportFrom)) for alias in stmt.names}
        for stmt in tree.body:
            if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in stmt.targets):
                listed = set(ast.literal_eval(stmt.value))
                assert listed <= bound, f"{path.relative_to(ROOT)}: __all__ names {sorted(listed - bound)}, never imported"


def target_importers() -> dict[str, set[str]]:
    """Modules outside neurocomp.targets that import a module of it, and which."""
    graph = import_graph()
    return {m: {d for d in deps if d.startswith("neurocomp.targets")} for m, deps in graph.items()
            if not m.startswith("neurocomp.targets") and any(d.startswith("neurocomp.targets") for d in deps)}


def test_generic_code_reaches_targets_only_through_hooks():
    assert target_importers() == {}


def private_imports(files: dict[str, Path]) -> list[str]:
    """`module <- source.name` for each underscore name a module imports from another module of the packages."""
    found = []
    for module, path in files.items():
        for base, name in imported_names(ast.parse(path.read_text(encoding="utf-8")), module, path.name == "__init__.py"):
            if name and name.startswith("_") and not name.startswith("__") and base in files:
                found.append(f"{module} <- {base}.{name}")
    return found


def test_no_module_imports_another_modules_private_names():
    assert private_imports(module_files()) == []


def test_private_import_check_catches_one(tmp_path):
    (tmp_path / "a.py").write_text("_hidden = 1\nshown = 2\n")
    (tmp_path / "b.py").write_text("from neurocomp.a import _hidden, shown\nfrom os import _exit\n")
    files = {"neurocomp.a": tmp_path / "a.py", "neurocomp.b": tmp_path / "b.py"}
    assert private_imports(files) == ["neurocomp.b <- neurocomp.a._hidden"]
