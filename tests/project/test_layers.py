"""The package's folders are its layers, and imports only point down: core < data < model < eval < train < book <
cli. Every import counts, a function-level one too. No import cycle, inside a layer or between the benchmarks."""

import ast
from pathlib import Path

from conftest import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "src" / "moviegpt"
LAYERS = ["core", "data", "model", "eval", "train", "book", "cli"]  # bottom to top


def module_name(path: Path, root: Path, prefix: str) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([prefix, *parts]) if prefix else ".".join(parts)


def imports(path: Path, known: set[str]) -> set[str]:
    """Every module of `known` that `path` imports, wherever the import statement stands."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def graph(root: Path, prefix: str) -> dict[str, set[str]]:
    files = {module_name(p, root, prefix): p for p in root.rglob("*.py") if "__pycache__" not in p.parts}
    return {m: imports(p, set(files)) - {m} for m, p in files.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
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

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def test_every_module_lives_in_a_layer():
    g = graph(PACKAGE, "moviegpt")
    outside = [m for m in g if layer(m) is None and m != "moviegpt"]
    assert not outside, f"modules outside the layers {LAYERS}: {outside}"
    assert sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()) == sorted(LAYERS)


def test_imports_only_point_down():
    g = graph(PACKAGE, "moviegpt")
    up = [
        f"{m} -> {t}"
        for m, targets in g.items()
        for t in targets
        if layer(m) is not None and layer(t) is not None and layer(t) > layer(m)
    ]
    assert not up, "imports that point up the layers:\n" + "\n".join(sorted(up))
    top = g["moviegpt"]  # the package's face hands on a few names from the bottom layer only
    assert all(layer(t) == 0 for t in top), top


def test_no_import_cycle_in_the_package_or_the_benchmarks():
    assert cycles(graph(PACKAGE, "moviegpt")) == []
    assert cycles(graph(PROJECT_ROOT / "benchmarks", "")) == []


def test_the_check_sees_a_function_level_import_that_points_up(tmp_path):
    """The rule is not vacuous: a planted upward import inside a function is found, and so is a cycle."""
    pkg = tmp_path / "moviegpt"
    for name in LAYERS:
        (pkg / name).mkdir(parents=True)
        (pkg / name / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "core" / "a.py").write_text("def f():\n    from moviegpt.cli import b\n")
    (pkg / "cli" / "b.py").write_text("from moviegpt.core import a\n")
    g = graph(pkg, "moviegpt")
    assert "moviegpt.cli.b" in g["moviegpt.core.a"] and layer("moviegpt.cli.b") > layer("moviegpt.core.a")
    assert cycles(g) == [["moviegpt.cli.b", "moviegpt.core.a"]]
