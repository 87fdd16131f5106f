"""The house's one-way arrows (docs/architecture.md), checked on every import in lgseg/, lazy ones
inside functions included: stages/ and cli.py point into lgseg/; inside it engine -> models / losses
/ data / text / evaluation -> scannet, never back; lgseg/ knows nothing of DVC."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lgseg"
# rooms by height: a room imports only rooms below it or beside it
RANK = {"scannet": 0, "data": 1, "models": 1, "losses": 1, "text": 1, "evaluation": 1, "instances": 1, "frames": 1,
        "lifting": 1, "engine": 2, "teachers": 2}
# the doors in from outside: the command line and the report/tracking/picture tools built on the rooms
ENTRY_POINTS = {"cli", "report", "tracking", "query", "render", "render_frame", "export", "prepare", "plots"}
FLOOR = {"errors", "fileio", "fetch", "registry"}  # shared by all; they import no room


def files():
    return sorted(p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("*.py"))


def room(rel: str) -> str:
    """``lgseg/engine/trainer.py`` -> engine; ``lgseg/fileio.py`` -> fileio."""
    parts = Path(rel).with_suffix("").parts
    return parts[1]


def imports(rel: str) -> list[tuple[str, int]]:
    """(absolute module name, line) of every import in the file; relative ones resolved."""
    package = list(Path(rel).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(ast.parse((ROOT / rel).read_text(), rel)):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            out.append((mod, node.lineno))
    return out


def lgseg_rooms_imported(rel: str):
    for mod, line in imports(rel):
        parts = mod.split(".")
        if parts[0] == "lgseg" and len(parts) > 1 and parts[1] != room(rel):
            yield parts[1], line


@pytest.mark.parametrize("rel", files())
def test_lgseg_knows_nothing_of_dvc_or_the_stages(rel):
    bad = [f"{rel}:{line} imports {mod}" for mod, line in imports(rel) if mod.split(".")[0] in ("dvc", "stages")]
    tree = ast.parse((ROOT / rel).read_text(), rel)
    bad += [f"{rel}:{n.lineno} names {n.value!r}" for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value.startswith("DVC_")]
    assert not bad, "lgseg/ gets DVC's facts as arguments from stages/ (stages/dvc_context.py): " + "; ".join(bad)


@pytest.mark.parametrize("rel", [f for f in files() if room(f) in RANK])
def test_rooms_point_down_only(rel):
    mine = RANK[room(rel)]
    up = [f"{rel}:{line} imports lgseg.{r}" for r, line in lgseg_rooms_imported(rel)
          if RANK.get(r, -1) > mine or r in ENTRY_POINTS]
    assert not up, "arrows point engine -> models/losses/data/text/evaluation -> scannet, never back: " + "; ".join(up)


@pytest.mark.parametrize("rel", [f for f in files() if room(f) in FLOOR])
def test_the_floor_imports_no_room(rel):
    up = [f"{rel}:{line} imports lgseg.{r}" for r, line in lgseg_rooms_imported(rel) if r not in FLOOR]
    assert not up, "; ".join(up)


def test_the_rooms_exist():  # the test checks something: a renamed room must be renamed here too
    assert {room(f) for f in files()} >= set(RANK) | FLOOR | {"cli", "tracking", "report"}


def module_of(rel: str) -> str:
    """``lgseg/losses/focal.py`` -> ``lgseg.losses.focal``; a package's ``__init__.py`` -> the package."""
    parts = list(Path(rel).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the lgseg modules it imports anywhere in it (``from a import b``: a, and a.b when b is
    a module; a string naming a module: a lazy table's entry)."""
    modules = {module_of(f) for f in files()}
    graph = {}
    for rel in files():
        names = set()
        for mod, _ in imports(rel):
            names.add(mod)
        tree = ast.parse((ROOT / rel).read_text(), rel)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:  # lgseg imports absolutely
                names.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in modules:
                names.add(node.value)
        me = module_of(rel)
        graph[me] = {n for n in names if n in modules and n != me}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circle_inside_lgseg():
    """Arrows run one way, lazy imports included: lgseg.config -> the registries -> their classes."""
    found = circles(import_graph())
    assert not found, "import circles: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_circle_check_finds_a_circle():  # it can fail: a two-module circle is found
    assert circles({"a": {"b"}, "b": {"a", "c"}, "c": set()}) == [["a", "b"]]
    graph = import_graph()
    assert "lgseg.config" in graph["lgseg.engine.launch"] and "lgseg.losses.registry" in graph["lgseg.losses.focal"]
