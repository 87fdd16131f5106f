"""The house's one-way arrows (docs/architecture.md), checked on every import in lgseg/, lazy ones
inside functions included: stages/ and cli.py point into lgseg/; inside it engine -> models / losses
/ data / text / evaluation -> scannet, never back; lgseg/ knows nothing of DVC."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lgseg"
# rooms by height: a room imports only rooms below it or beside it
RANK = {"scannet": 0, "data": 1, "models": 1, "losses": 1, "text": 1, "evaluation": 1, "instances": 1, "engine": 2}
# the doors in from outside: the command line and the report/tracking/picture tools built on the rooms
ENTRY_POINTS = {"cli", "report", "tracking", "query", "render", "export", "prepare", "plots"}
FLOOR = {"errors", "fileio", "registry"}  # shared by all; they import no room


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
