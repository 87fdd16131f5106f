"""Issue 11, items 7-9: params.yaml's schema (lgseg.params_schema), `lgseg check-params`, and every
stage checking the whole file before any work. Bad values and misspelled keys are one line naming
the key as params.yaml spells it, all of them at once, within seconds, never a traceback."""

import copy
import re
import importlib.util
import os
import subprocess
import sys
import time
import typing
from pathlib import Path

import pytest
import yaml

from lgseg import params_schema as schema
from lgseg.cli import main as cli
from lgseg.params_schema import CLIP_MODELS, FINETUNE_LOSSES, MODEL_NAMES, params_problems, schema_keys

ROOT = Path(__file__).resolve().parents[2]
DEMO = yaml.safe_load((ROOT / "params.yaml").read_text())
PAPER = yaml.safe_load((ROOT / "profiles/paper.yaml").read_text())


def with_(params: dict, **changes) -> dict:
    """A copy of ``params`` with dotted keys set as `dvc exp run -S` would (``__`` stands for ``.``)."""
    params = copy.deepcopy(params)
    for dotted, value in changes.items():
        *path, last = dotted.split("__")
        node = params
        for key in path:
            node = node[key]
        node[last] = value
    return params


def flat_keys(d: dict, prefix: str = "") -> set[str]:
    keys = set()
    for k, v in d.items():
        keys.add(prefix + k)
        if isinstance(v, dict):
            keys |= flat_keys(v, prefix + k + ".")
    return keys


@pytest.mark.parametrize("params", [DEMO, PAPER], ids=["params.yaml", "profiles/paper.yaml"])
def test_the_committed_profiles_are_valid(params):
    assert params_problems(params) == []


@pytest.mark.parametrize("params", [DEMO, PAPER], ids=["params.yaml", "profiles/paper.yaml"])
def test_the_schema_knows_exactly_the_files_keys(params):
    # every key of the file is in the schema, and every key the schema requires is in the file:
    # the keys it knows beyond (an augmentation's p, an optimizer's nesterov) are optional
    assert flat_keys(params) <= schema_keys()
    assert schema_keys(required_only=True) == flat_keys(params)


BAD = [
    ({"pretrain__epochs": "abc"}, "pretrain.epochs: expected an integer >= 1, got 'abc'"),
    ({"pretrain__epochs": 2.5}, "pretrain.epochs: expected an integer >= 1, got 2.5"),
    ({"pretrain__batch_size": 0}, "pretrain.batch_size: expected an integer >= 1, got 0"),
    ({"augment__crop_points": -5}, "augment.crop_points: expected an integer >= 0 (0: whole scenes), got -5"),
    ({"loss__gamma": -1}, "loss.gamma: expected a number >= 0, got -1"),
    ({"loss__type": "foo"}, "loss.type: expected one of ce, focal, cb_focal, got 'foo'"),
    ({"loss__type": "contrastive"}, "loss.type: expected one of ce, focal, cb_focal, got 'contrastive' "
                                    "(pretraining's loss, set in pretrain.contrastive)"),
    ({"data__voxel_size": 0}, "data.voxel_size: expected a number of metres in [0.001, 10], got 0"),
    ({"model__backend": "torchsparse"}, "model.backend: expected one of minkowski, spconv, got 'torchsparse'"),
    ({"pretrain__epoch": 2}, "pretrain.epoch: unknown key; did you mean pretrain.epochs?"),
    ({"pretrain__holdout": ["chair", "chiar"]}, "pretrain.holdout: unknown ScanNet200 class name 'chiar' "
                                                "(did you mean 'chair'?)"),
    ({"pretrain__optimizer__type": "adam"}, "pretrain.optimizer.type: expected one of sgd, adamw, got 'adam'"),
    ({"text__prompt": "a {} and a {}"},
     "text.prompt: expected a text holding exactly one {} (the class name), got 'a {} and a {}'"),
    ({"evaluate__render": ["../../etc"]}, "evaluate.render: not ScanNet scene id(s) like scene0011_00: '../../etc'"),
    ({"train__amp": "yes"}, "train.amp: expected true or false, got 'yes'"),
    ({"loss": None}, "loss: expected a section of keys, got None"),
    ({"pretrain__csc__temprature": 0.4}, "pretrain.csc.temprature: unknown key; did you mean pretrain.csc.temperature?"),
    ({"pretrain__csc__partition": "octants"},
     "pretrain.csc.partition: expected one of up_down, shape_context, got 'octants'"),
    ({"pretrain__objective": "pointcontrast"},
     "pretrain.objective: expected one of language, supcon, csc, distill, got 'pointcontrast'"),
    ({"insseg__cluster_radius": 0}, "insseg.cluster_radius: expected a number > 0, got 0"),
    ({"insseg__cluster_score": "max"}, "insseg.cluster_score: expected one of median, mean, got 'max'"),
    ({"insseg__cluster_radious": 0.05}, "insseg.cluster_radious: unknown key; did you mean insseg.cluster_radius?"),
]


@pytest.mark.parametrize("changes, message", BAD, ids=[m.split(":")[0] + "=" + repr(next(iter(c.values())))
                                                       for c, m in BAD])
def test_a_bad_value_is_one_line_naming_its_key(changes, message):
    assert params_problems(with_(DEMO, **changes)) == [message]


def test_another_types_keys_are_named_as_such():
    assert params_problems(with_(DEMO, finetune__scheduler__type="poly")) == [  # multistep's keys
        "finetune.scheduler.milestones: not a key of finetune.scheduler type 'poly' (its keys: type, power)",
        "finetune.scheduler.gamma: not a key of finetune.scheduler type 'poly' (its keys: type, power)",
    ]


def test_a_missing_key_says_what_it_takes():
    params = copy.deepcopy(DEMO)
    del params["loss"]["gamma"]
    assert params_problems(params) == ["loss.gamma: missing; expected a number >= 0"]


def test_the_keys_the_code_accepts_beyond_params_yaml_are_checked_too():
    assert params_problems(with_(DEMO, augment__flip_p=0.5, pretrain__optimizer__nesterov=True,
                                 pretrain__max_points=None, train__device="cuda:1",
                                 instance_sampling__classes=["chair", "lamp"])) == []
    assert params_problems(with_(DEMO, augment__flip_p=2)) == ["augment.flip_p: expected a number in [0, 1], got 2"]


def test_every_problem_is_reported_at_once():
    params = with_(DEMO, pretrain__epochs="abc", loss__type="foo", data__voxel_size=0, tracking__urii="x")
    assert sorted(params_problems(params)) == [
        "data.voxel_size: expected a number of metres in [0.001, 10], got 0",
        "loss.type: expected one of ce, focal, cb_focal, got 'foo'",
        "pretrain.epochs: expected an integer >= 1, got 'abc'",
        "tracking.urii: unknown key; did you mean tracking.uri?",
    ]


@pytest.mark.parametrize("cfg, key", [({"crop_points": -5}, "augment.crop_points"),
                                      ({"flip": "yes"}, "augment.flip"), ({"flip_p": 2}, "augment.flip_p"),
                                      ({"fllip": True}, "augment.fllip")])
def test_the_augmentation_builder_names_params_yamls_key(cfg, key):
    # what lgseg's API says when called without the stage's check (it said augmentation.crop_points)
    from lgseg.data.transforms import build_transforms

    with pytest.raises(ValueError, match=rf"^{key}[: ]"):
        build_transforms(cfg, train=True)


def test_the_schemas_choices_are_the_codes():
    # the schema mirrors registries that sit behind torch imports; they must not drift apart
    from lgseg.data.dataset import VOXEL_POINTS
    from lgseg.data.instance_sampling import RULES as SAMPLING_RULES
    from lgseg.losses import LOSSES
    from lgseg.config import PRETRAIN_OBJECTIVES
    from lgseg.losses.contrastive import FORMS
    from lgseg.losses.supcon import SAMPLINGS as SUPCON_SAMPLINGS
    from lgseg.models import MODELS
    from lgseg.models.backends import BACKENDS
    from lgseg.models.res16unet import INITS
    from lgseg.scannet.annotation import RULES as ANNOTATION_RULES
    from lgseg.text.clip_text import CLIP_FILES

    assert MODEL_NAMES == MODELS.keys()
    assert CLIP_MODELS == tuple(CLIP_FILES)
    # pretraining's losses and the instance task's offset loss are no fine-tuning loss.type
    assert set(FINETUNE_LOSSES) == set(LOSSES.keys()) - {"contrastive", "supcon", "csc", "distill", "offset"}

    def choices(section, key):
        return set(typing.get_args(section.model_fields[key].annotation))

    assert choices(schema.ModelSection, "backend") == set(BACKENDS)
    assert choices(schema.ModelSection, "init") == set(INITS)
    assert choices(schema.Data, "train_voxel_point") == set(VOXEL_POINTS)
    assert choices(schema.Annotation, "rule") == set(ANNOTATION_RULES)
    assert choices(schema.InstanceSampling, "rule") == set(SAMPLING_RULES)
    assert choices(schema.Contrastive, "form") == set(FORMS)
    assert choices(schema.SupCon, "sampling") == set(SUPCON_SAMPLINGS)
    assert choices(schema.Pretrain, "objective") == set(PRETRAIN_OBJECTIVES)
    from lgseg.losses.csc import PARTITIONS

    assert choices(schema.Csc, "partition") == set(PARTITIONS)
    from lgseg.data.voxelize import VOXEL_SIZE_RANGE
    from lgseg.instances.cluster import SCORES

    lo, hi = VOXEL_SIZE_RANGE  # data.voxel_size's range is the voxelizer's
    assert [bool(params_problems(with_(DEMO, data__voxel_size=v))) for v in (lo, hi, lo * 0.999, hi * 1.001)] == [
        False, False, True, True]

    assert choices(schema.Insseg, "cluster_score") == set(SCORES)


def test_the_schema_imports_no_torch():
    code = "import sys, lgseg.params_schema; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def write_params(path: Path, params: dict) -> Path:
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def test_check_params_prints_every_problem_and_exits_1(tmp_path, capsys):
    bad = write_params(tmp_path / "params.yaml", with_(DEMO, pretrain__epochs="abc", pretrain__epoch=2))
    assert cli(["check-params", str(bad)]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"{bad}: pretrain.epochs: expected an integer >= 1, got 'abc'",
                                f"{bad}: pretrain.epoch: unknown key; did you mean pretrain.epochs?"]
    assert err.strip() == f"lgseg check-params: error: {bad}: 2 problems"


def test_check_params_passes_the_committed_params_yaml(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    assert cli(["check-params"]) == 0
    assert capsys.readouterr().out == "params.yaml: ok\n"
    assert cli(["check-params", "profiles/paper.yaml"]) == 0


def test_check_params_on_a_missing_file_names_it_and_the_fix(tmp_path, capsys):
    path = tmp_path / "params.yaml"
    assert cli(["check-params", str(path)]) == 1
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err == (f"lgseg check-params: error: {path}: the params file does not exist. Run in the repo root "
                       "(it holds params.yaml; profiles/ holds others) or name the file: lgseg check-params FILE\n")


@pytest.mark.parametrize("text, problem", [
    ("data: [1\n", "not valid YAML at line 2, column 1: expected ',' or ']', but got '<stream end>'"),
    ("", "expected a mapping of sections (data, frames, teacher, lift, annotation, augment, text, model, train, "
         "pretrain, features, finetune, loss, instance_sampling, insseg, evaluate, tracking), got None"),
])
def test_check_params_on_an_unreadable_file_is_one_line(tmp_path, capsys, text, problem):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    assert cli(["check-params", str(path)]) == 1
    assert capsys.readouterr().out == f"{path}: {problem}\n"


def run_stage(cwd: Path, stage: str = "pretrain") -> tuple[subprocess.CompletedProcess, float]:
    """The repo's stage script run as DVC would, from ``cwd`` (which holds only params.yaml)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    start = time.monotonic()
    r = subprocess.run([sys.executable, str(ROOT / f"stages/{stage}.py")], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=120)
    return r, time.monotonic() - start


def test_a_stage_refuses_bad_params_before_any_work(tmp_path):
    write_params(tmp_path / "params.yaml", with_(DEMO, pretrain__epochs="abc", pretrain__epoch=2))
    r, seconds = run_stage(tmp_path)
    assert r.returncode == 1, r.stderr
    assert r.stderr.splitlines() == [
        "pretrain: error: params.yaml: pretrain.epochs: expected an integer >= 1, got 'abc'",
        "pretrain: error: params.yaml: pretrain.epoch: unknown key; did you mean pretrain.epochs?",
    ]
    assert seconds < 15  # the stage's imports (torch) and the check; 12-20 s of set-up before this fix
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]  # no tracking store, no outputs


def test_a_stage_refuses_contrastive_as_the_fine_tuning_loss(tmp_path):
    write_params(tmp_path / "params.yaml", with_(DEMO, loss__type="contrastive"))
    r, _ = run_stage(tmp_path, "finetune")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.splitlines() == ["finetune: error: params.yaml: loss.type: expected one of ce, focal, "
                                     "cb_focal, got 'contrastive' (pretraining's loss, set in pretrain.contrastive)"]


def test_dvc_exp_run_with_a_bad_or_misspelled_key_fails_at_once(tmp_path):
    # the user's path: DVC writes -S values into params.yaml ('abc' a string, +key a new key) and
    # the first stage it runs refuses the whole file
    spec = importlib.util.spec_from_file_location("stages_conftest", ROOT / "tests/stages/conftest.py")
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    project = helpers.make_project(tmp_path)
    helpers.sh(["git", "add", "-A"], project)
    helpers.sh(["git", "commit", "-qm", "pipeline"], project)
    r = helpers.sh(["dvc", "exp", "run", "-S", "pretrain.epochs=abc", "-S", "+pretrain.epoch=2"],
                   project, check=False)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if ": error: " in line]
    assert errors == ["download: error: params.yaml: pretrain.epochs: expected an integer >= 1, got 'abc'",
                      "download: error: params.yaml: pretrain.epoch: unknown key; did you mean pretrain.epochs?"]
    assert not (project / "data/raw").exists()  # no work was done


def _alias_bomb(levels: int = 9) -> str:
    """YAML anchors of ten aliases each, ``levels`` deep, under evaluate.render: 10**levels leaves."""
    lines = ["  render:", "    - &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"    - &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_under_a_nested_key_is_one_line_in_milliseconds_not_minutes(tmp_path):
    """A billion-leaf alias chain under evaluate.render made the check walk every leaf (minutes, GBs);
    the expansion is measured on YAML's graph of shared nodes and refused before anything is built."""
    text = (ROOT / "params.yaml").read_text()
    head, _, tail = text.partition("  render: ")
    path = tmp_path / "params.yaml"
    path.write_text(head + _alias_bomb() + tail.split("\n", 1)[1])
    r = subprocess.run([sys.executable, "-m", "lgseg.cli", "check-params", str(path)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1
    (line,) = r.stdout.splitlines()
    m = re.fullmatch(re.escape(f"{path}: its YAML aliases expand to ") + r"([\d,]+)" + re.escape(
        " values, more than the 100,000 a params file can hold (an alias bomb?); write the values out instead of "
        "aliasing"), line)
    assert m and int(m.group(1).replace(",", "")) > 10**9, line


def test_a_few_aliases_stay_legal(tmp_path):
    from lgseg.params_schema import load_params_file

    path = tmp_path / "p.yaml"
    path.write_text("a: &x [1, 2]\nb: *x\n")
    assert load_params_file(path) == {"a": [1, 2], "b": [1, 2]}


# ---- issue 26: bounds on the file and its texts, cross-key rules, numbers YAML reads as text --------

@pytest.mark.parametrize("padding", ["comments", "list"])
def test_a_huge_params_file_is_refused_by_its_size_before_yaml_parses_it(tmp_path, padding):
    """500,000 comment lines took check-params 106 s, a 7-million-item list more than 10 minutes."""
    text = (ROOT / "params.yaml").read_text()
    path = tmp_path / "params.yaml"
    with open(path, "w") as f:
        f.write(text)
        if padding == "comments":
            f.writelines("# padding\n" for _ in range(500_000))
        else:
            f.write("extra: [" + "1," * 7_000_000 + "1]\n")
    start = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "lgseg.cli", "check-params", str(path)], capture_output=True,
                       text=True, timeout=60)
    assert time.monotonic() - start < 15  # the interpreter's start-up; the check itself takes milliseconds
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stdout.splitlines() == [f"{path}: more than 256 KiB, far more than a params file holds (params.yaml "
                                     "is about 11 KiB); keep only the sections of params.yaml"]


def test_a_params_file_just_under_the_bound_is_still_read(tmp_path):
    text = (ROOT / "params.yaml").read_text()
    pad = "# padding\n" * ((schema.MAX_PARAMS_BYTES - len(text.encode())) // 10)
    assert schema.check_file(write_text(tmp_path / "params.yaml", text + pad)) == []


def write_text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("key", ["text__prompt", "tracking__experiment", "data__scannet_root"])
def test_a_50_mb_text_value_is_refused_naming_its_key(key):
    value = "{}" + "x" * 50_000_000 if key == "text__prompt" else "x" * 50_000_000
    (problem,) = params_problems(with_(DEMO, **{key: value}))
    limit = "4,096" if key == "data__scannet_root" else "1,000"
    assert problem == (f"{key.replace('__', '.')}: {len(value):,} characters, more than the {limit} any value of a "
                       "params file needs")


@pytest.mark.parametrize("value", ["1e-30", "5e2"])
def test_a_number_yaml_reads_as_text_says_how_to_write_it(value):
    (problem,) = params_problems(with_(DEMO, pretrain__supcon__temperature=value))
    assert problem == (f"pretrain.supcon.temperature: expected a number > 0, got {value!r} (YAML reads {value} as "
                       "text: write it with a dot, e.g. 1.0e-30, to make it a number)")


def test_yaml_itself_reads_1e_minus_30_as_text_and_1_0e_minus_30_as_a_number():
    assert yaml.safe_load("t: 1e-30")["t"] == "1e-30" and yaml.safe_load("t: 1.0e-30")["t"] == 1e-30


def test_csc_radii_out_of_order_are_a_params_problem():
    assert params_problems(with_(DEMO, pretrain__csc__inner_radius=0.6, pretrain__csc__outer_radius=0.5)) == [
        "pretrain.csc.inner_radius: 0.6 is not below pretrain.csc.outer_radius (0.5); expected inner_radius < "
        "outer_radius (metres: nearer points are no negatives, the outer radius separates the inner partitions "
        "from the outer ones)"]


def test_csc_shape_context_bins_beyond_int16_are_a_params_problem():
    changes = dict(pretrain__csc__partition="shape_context", pretrain__csc__nbins_xy=200, pretrain__csc__nbins_zy=100)
    assert params_problems(with_(DEMO, **changes)) == [
        "pretrain.csc.nbins_xy, pretrain.csc.nbins_zy: 2 x 200 x 100 = 40000 shape-context partitions, more than "
        "the 32767 lgseg.losses.csc numbers (int16); expected 2 * nbins_xy * nbins_zy <= 32767"]
    assert params_problems(with_(DEMO, pretrain__csc__nbins_xy=200, pretrain__csc__nbins_zy=100)) == []  # up_down


def test_a_loss_builder_error_is_one_line_naming_the_section():
    from lgseg.config import training_config
    from lgseg.engine.launch import build_task
    from lgseg.errors import LgsegError

    cfg = training_config(with_(DEMO, pretrain__objective="csc", pretrain__csc__inner_radius=0.6,
                                pretrain__csc__outer_radius=0.5), "pretrain")
    with pytest.raises(LgsegError) as e:
        build_task("pretrain", cfg, None, None, [])
    assert str(e.value).startswith("params.yaml: pretrain.csc: loss type 'csc': outer_radius must be a number > "
                                   "inner_radius") and "\n" not in str(e.value)
