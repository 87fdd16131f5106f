"""dvc.yaml's deps cover the code each stage runs: the import closure of the stage script inside
stages/ and lgseg/, lazy imports inside functions included. A dep on a folder covers its files.
Without this DVC skips a stage whose code changed (the deps were once copied by hand and drifted)."""

import ast
import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
# modules that decide only where and how a run is logged, never what a stage writes (as tracking.*
# params start no stage): a change to them must not rerun the pipeline, so the closure stops there
NOT_OUTPUTS = {"lgseg/tracking.py", "stages/dvc_context.py"}
_MODULE_NAME = re.compile(r"lgseg(\.\w+)+")


def module_file(name: str) -> str | None:
    """``lgseg.a.b`` -> ``lgseg/a/b.py`` or ``lgseg/a/b/__init__.py``; a stage helper by its bare name."""
    base = ROOT.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path.relative_to(ROOT).as_posix()
    helper = ROOT / "stages" / f"{name}.py"  # `from common import run`: stages/ is the script's folder
    return helper.relative_to(ROOT).as_posix() if "." not in name and helper.is_file() else None


def _package(rel: str) -> str:
    parts = Path(rel).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] != "__init__" else parts[:-1])


def imported_names(rel: str) -> set[str]:
    """Every module a file may import: import statements anywhere in it (relative ones resolved),
    ``from X import y`` as both X and X.y, and string constants naming an lgseg module (lazy tables
    such as lgseg/models/__init__.py's for import_module)."""
    tree = ast.parse((ROOT / rel).read_text(), rel)
    package, names = _package(rel), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names.add(mod)
            names.update(f"{mod}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _MODULE_NAME.fullmatch(node.value):
            names.add(node.value)
    # importing a.b.c runs a/__init__.py and a/b/__init__.py first
    return {".".join(n.split(".")[:i]) for n in names if n for i in range(1, n.count(".") + 2)}


def import_closure(script: str) -> set[str]:
    seen, todo = set(), [script]
    while todo:
        rel = todo.pop()
        if rel in seen:
            continue
        seen.add(rel)
        if rel in NOT_OUTPUTS:
            continue
        todo += [f for f in map(module_file, imported_names(rel)) if f and f not in seen]
    return seen - NOT_OUTPUTS


def stage_script(cmd: str) -> str:
    return next(w for w in shlex.split(cmd) if w.startswith("stages/") and w.endswith(".py"))


def covered(path: str, deps: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_deps_cover_the_stage_code(stage):
    spec = STAGES[stage]
    missing = sorted(f for f in import_closure(stage_script(spec["cmd"])) if not covered(f, spec.get("deps", [])))
    assert not missing, f"dvc.yaml: stage {stage} runs code its deps do not name: {missing}"


def _is_code(dep: str) -> bool:
    path = ROOT / dep
    return path.suffix == ".py" or (path.is_dir() and any(path.rglob("*.py")))


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_deps_name_no_code_the_stage_does_not_run(stage):
    # a code dep outside the closure reruns the stage (preprocessing all of ScanNet) for nothing;
    # data deps (lgseg/scannet/meta's tables) hold no Python and are read, not imported
    spec, closure = STAGES[stage], import_closure(stage_script(STAGES[stage]["cmd"]))
    idle = [d for d in spec.get("deps", []) if d.startswith(("lgseg", "stages")) and _is_code(d)
            and not any(covered(f, [d]) for f in closure)]
    assert not idle, f"dvc.yaml: stage {stage} depends on code it never imports: {idle}"

def test_the_closure_follows_lazy_imports():
    closure = import_closure("stages/evaluate.py")
    assert {"stages/common.py", "lgseg/engine/predict.py", "lgseg/render.py"} <= closure  # imports inside main()
    assert "lgseg/models/registry.py" in closure  # named in lgseg.models' lazy import table
    assert "lgseg/data/collate.py" in closure  # named in lgseg.data's lazy import table
    assert "lgseg/tracking.py" not in closure


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_no_dep_is_an_empty_file(stage):
    """DVC warns "'<file>' is empty" for each stage that depends on an empty file (16 lines in a
    `dvc repro` once, for lgseg/scannet/__init__.py): every file a stage depends on has content."""
    empty = []
    for dep in STAGES[stage].get("deps", []):
        path = ROOT / dep
        files = [path] if path.is_file() else sorted(path.rglob("*")) if path.is_dir() else []
        empty += [f.relative_to(ROOT).as_posix() for f in files
                  if f.is_file() and f.stat().st_size == 0 and "__pycache__" not in f.parts]
    assert not empty, f"{stage} depends on empty files: {empty}"
