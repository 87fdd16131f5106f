"""The schema of params.yaml (and profiles/*.yaml, which hold the same keys): every key, its type,
range and choices, and the paper's value (``ref``) where it differs or matters.

``params_problems(params)`` lists every problem of a params dict, one line each, naming the key as
params.yaml spells it: ``pretrain.epochs: expected an integer >= 1, got 'abc'``,
``pretrain.epoch: unknown key; did you mean pretrain.epochs?``. The stages run it on the whole
file before any work and ``lgseg check-params`` runs it on a file.

Values are strict, as YAML writes them: ``'5'`` or ``5.0`` is no integer (the code would compare
or index with it), ``true`` is no number. Every key of params.yaml is required. A key declared
with a default (``= None``) is one the code accepts beyond params.yaml's (an augmentation's
probability, an optimizer's ``nesterov``): it may be added, is checked when present, and is absent
from params.yaml. Importing this module must stay cheap (no torch): every stage imports it first.
"""

import difflib
import functools
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, WrapValidator
from pydantic_core import PydanticCustomError

from lgseg.scannet.constants import CLASS_NAMES, SPLITS

# Mirrors of registries that live behind torch imports (lgseg.models.MODELS, lgseg.text.clip_text
# CLIP_FILES); tests/reliability/test_params.py checks they agree.
MODEL_NAMES = ("Res16UNet34C", "Res16UNet34D", "Res16UNet14A", "Res16UNet14S")
CLIP_MODELS = ("RN50", "RN101", "RN50x4", "RN50x16", "RN50x64", "ViT-B/32", "ViT-B/16", "ViT-L/14",
               "ViT-L/14@336px")
FINETUNE_LOSSES = ("ce", "focal", "cb_focal")
SCENE_ID = re.compile(r"scene\d{4}_\d{2}")
_KNOWN_CLASSES = frozenset(CLASS_NAMES)


# ---- value types: each failure reads "expected <what>, got <value>" ----

def _problem(message: str) -> PydanticCustomError:
    # the message goes in as context: a literal "{}" in it (text.prompt) is no format field
    return PydanticCustomError("lgseg", "{message}", {"message": message})


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _number_as_text(value: Any) -> str:
    """A hint for a number YAML read as text: PyYAML (YAML 1.1) takes 1e-30 (no dot) for a string."""
    if not isinstance(value, str):
        return ""
    try:
        float(value)
    except ValueError:
        return ""
    return f" (YAML reads {value} as text: write it with a dot, e.g. 1.0e-30, to make it a number)"


def _expecting(expect: str):
    def wrap(value, handler):
        try:
            return handler(value)
        except ValidationError as e:
            own = [err["msg"] for err in e.errors() if err["type"] == "lgseg"]  # a precise inner message
            hint = _number_as_text(value) if "number" in expect or "integer" in expect else ""
            raise _problem(own[0] if own else f"expected {expect}, got {_shown(value)}{hint}") from None
    wrap.expect = expect
    return wrap


def _checked(base, expect: str, *metadata):
    """``base`` with ``metadata`` (constraints, validators); any failure says what was expected."""
    return Annotated[(base, *metadata, WrapValidator(_expecting(expect)))]


def _integer(ge: int, expect: str = ""):
    return _checked(int, expect or f"an integer >= {ge}", Field(ge=ge))


def _number(expect: str, **bounds):
    return _checked(float, expect, Field(allow_inf_nan=False, **bounds))


def _choice(*options: str):
    return _checked(Literal[options], "one of " + ", ".join(options))


def _ordered(pair: list) -> list:
    if pair[0] > pair[1]:
        raise ValueError("low > high")
    return pair


def _positive_low(pair: list) -> list:
    if pair[0] <= 0:
        raise ValueError("low <= 0")
    return _ordered(pair)


def _elastic_pairs(pairs: list) -> list:
    if any(len(p) != 2 or p[0] <= 0 or p[1] < 0 for p in pairs):
        raise ValueError("not [granularity > 0, magnitude >= 0]")
    return pairs


def _betas(betas: list) -> list:
    if not all(0 <= b < 1 for b in betas):
        raise ValueError("a beta outside [0, 1)")
    return betas


def _epochs(milestones: list) -> list:
    if any(m < 1 for m in milestones):
        raise ValueError("an epoch < 1")
    return milestones


def _class_names(names: list) -> list:
    unknown = [n for n in names if n not in _KNOWN_CLASSES]
    if unknown:
        hints = [f"{n!r}" + "".join(f" (did you mean {m!r}?)" for m in difflib.get_close_matches(n, CLASS_NAMES, 1))
                 for n in unknown]
        raise _problem(f"unknown ScanNet200 class name{'s' if len(unknown) > 1 else ''} {', '.join(hints)}")
    return names


def _scene_ids(ids: list) -> list:
    bad = [s for s in ids if not SCENE_ID.fullmatch(s)]
    if bad:
        raise _problem(f"not ScanNet scene id(s) like scene0011_00: {', '.join(map(repr, bad))}")
    return ids


def _bad(message: str):
    raise ValueError(message)


def _one_placeholder(prompt: str) -> str:
    if prompt.count("{}") != 1:
        raise ValueError("needs exactly one {}")
    return prompt


def _not_pretraining_loss(kind):
    if kind == "contrastive":  # a registered loss, but it needs text anchors that fine-tuning has not
        raise _problem("expected one of ce, focal, cb_focal, got 'contrastive' (pretraining's loss, "
                       "set in pretrain.contrastive)")
    return kind


# Texts are bounded: a params file is read by every stage, and no name, path or prompt is this long
MAX_TEXT, MAX_PATH = 1000, 4096


def _at_most(limit: int):
    def check(text: str) -> str:
        if len(text) > limit:
            raise _problem(f"{len(text):,} characters, more than the {limit:,} any value of a params file needs")
        return text
    return AfterValidator(check)


Flag = _checked(bool, "true or false")
Text = _checked(str, "a text", _at_most(MAX_TEXT))
PathText = _checked(str, "a path, or empty", _at_most(MAX_PATH))
Seed = _integer(0)
Count = _integer(0)
PositiveInt = _integer(1)
Probability = _number("a number in [0, 1]", ge=0, le=1)
Fraction = _number("a number in (0, 1]", gt=0, le=1)  # also a BatchNorm momentum
NonNegative = _number("a number >= 0", ge=0)
Positive = _number("a number > 0", gt=0)
Real = _number("a number")
# lgseg.data.voxelize.VOXEL_SIZE_RANGE (tests/reliability/test_params.py checks they agree)
VoxelSize = _number("a number of metres in [0.001, 10]", ge=0.001, le=10.0)
ObjectiveLr = _checked(Union[float, None], "a number > 0, or null (pretrain.optimizer.lr)",
                       Field(gt=0, allow_inf_nan=False))
Pair = _checked(list[float], "a [low, high] pair of numbers with low <= high",
                Field(min_length=2, max_length=2), AfterValidator(_ordered))
ScaleRange = _checked(list[float], "a [low, high] pair of numbers with 0 < low <= high",
                      Field(min_length=2, max_length=2), AfterValidator(_positive_low))
ClassNames = _checked(list[str], "a list of ScanNet200 class names", AfterValidator(_class_names))
MaxPoints = _checked(Union[int, None], "an integer >= 1 or null (no cap)", Field(ge=1))
ModelName = _choice(*MODEL_NAMES)
Rule = _choice("paper", "reference")

Scenes = _checked(int, "an integer in 1..10000", Field(ge=1, le=10000))
SOURCES = ("synthetic", "scannet", "processed")  # data.source: what the download stage starts from
Source = _choice(*SOURCES)
VoxelPoint = _choice("random", "first")
CropPoints = _integer(0, "an integer >= 0 (0: whole scenes)")
ElasticParams = _checked(list[list[float]], "a list of [granularity > 0, magnitude >= 0] pairs",
                         AfterValidator(_elastic_pairs))
Blend = _checked(Union[float, None], "a number in [0, 1] or null (random)", Field(ge=0, le=1))
Encoder = _choice("sentence", "clip")
ClipModel = _choice(*CLIP_MODELS)
Prompt = _checked(str, "a text holding exactly one {} (the class name)", _at_most(MAX_TEXT),
                  AfterValidator(_one_placeholder))
Backend = _choice("minkowski", "spconv")
Init = _choice("kaiming", "minkowski")
Launcher = _checked(str, "a command such as python or torchrun --standalone --nproc_per_node=2",
                    Field(min_length=1), _at_most(MAX_TEXT))
Device = _checked(Union[Literal["auto", "cpu", "cuda"], Annotated[str, Field(pattern=r"^cuda:\d+$")]],
                  "one of auto, cpu, cuda (or cuda:<index>)")
Threads = _integer(0, "an integer >= 0 (0: torch's default)")
Betas = _checked(list[float], "a [beta1, beta2] pair of numbers in [0, 1)", Field(min_length=2, max_length=2),
                 AfterValidator(_betas))
Milestones = _checked(list[int], "a list of epochs (integers >= 1)", AfterValidator(_epochs))
ContrastiveForm = _choice("reference", "paper")
PretrainObjective = _choice("language", "supcon", "csc", "distill")
DistillForm = _choice("cosine", "l1")
TeacherType = _choice("lseg_demo", "clip", "dino")
FusionRule = _choice("mean", "nearest", "center")
OcclusionMode = _choice("relative", "absolute")


def _image_size(size: list) -> list:
    if any(s < 8 or s > 16384 for s in size):
        raise ValueError("a side outside 8..16384")
    return size


ImageSize = _checked(Union[Annotated[list[int], Field(min_length=2, max_length=2), AfterValidator(_image_size)], None],
                     "a [width, height] pair of integers in 8..16384, or null (as recorded)")
CscPartition = _choice("up_down", "shape_context")
SupConSampling = _choice("uniform", "balanced")
SupConSamples = _integer(2)
FinetuneInit = _choice("pretrained", "scratch")
LossType = _checked(Literal[FINETUNE_LOSSES], "one of " + ", ".join(FINETUNE_LOSSES),
                    BeforeValidator(_not_pretraining_loss))
AlphaNorm = _choice("sum", "mean")
BankClasses = _checked(Union[Literal[(*SPLITS, "all")],
                             Annotated[list[str], Field(min_length=1), AfterValidator(_class_names)]],
                       f"one of {', '.join(SPLITS)}, all or a list of ScanNet200 class names")
ClusterScore = _choice("median", "mean")
ScoreThreshold = _checked(Union[float, None], "a number, or null (keep every instance)", Field(allow_inf_nan=False))
Split = _choice("val")  # the pipeline exports ground truth of val only (data/gt/val)
Render = _checked(Union[Annotated[int, Field(ge=0)], Annotated[list[str], AfterValidator(_scene_ids)]],
                  "a number of scenes >= 0 or a list of scene ids")


def ref(value: str):
    """A required key whose paper / reference-code value is ``value``."""
    return Field(description=f"ref: {value}")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# ---- sections, in params.yaml's order ----

class SyntheticObjects(_Section):  # objects per room of each scene split
    train: PositiveInt
    val: PositiveInt
    test: PositiveInt


class SyntheticMinimum(_Section):  # guaranteed train instances of every class of each class split
    head: Count
    common: Count
    tail: Count


class Synthetic(_Section):
    scenes: Scenes
    seed: Seed
    objects: SyntheticObjects
    train_min: SyntheticMinimum
    val_min: Count
    frames: _integer(0, "an integer in 0..1000 (0: no RGB-D frames)") = Field(le=1000)


class Data(_Section):
    source: Source = ref("scannet")
    scannet_root: PathText
    processed_root: PathText
    synthetic: Synthetic
    workers: PositiveInt
    voxel_size: VoxelSize = ref("0.02 m")
    train_voxel_point: VoxelPoint = ref("first")


class Frames(_Section):
    step: PositiveInt = ref("OpenScene: 20")
    size: ImageSize = ref("OpenScene: [320, 240]")


class LsegDemo(_Section):
    width: PositiveInt
    shrink: PositiveInt
    epochs: PositiveInt
    batch_size: PositiveInt
    lr: Positive
    temperature: Positive = ref("0.07 (CLIP, LSeg)")
    seed: Seed


class ClipTeacher(_Section):
    model: ClipModel = ref("ViT-B/16 (3D-OVS)")
    weights: PathText
    mode: _choice("patches", "global") = ref("patches (3D-OVS)")
    downsample: PositiveInt = ref("8 (3D-OVS)")
    patch_divisors: _checked(list[int], "a list of integers >= 1", Field(min_length=1, max_length=16),
                             AfterValidator(lambda v: v if all(d >= 1 for d in v) else _bad("a divisor < 1"))) \
        = ref("[5, 7, 10] (3D-OVS)")
    stride_divisor: PositiveInt = ref("4 (3D-OVS)")
    growth_divisor: PositiveInt = ref("4 (3D-OVS)")
    seed: Seed
    batch_size: PositiveInt
    device: Device


class DinoTeacher(_Section):
    model: Text = ref("vit_base_patch8_224.dino (3D-OVS); vit_large_patch14_dinov2.lvd142m (Bridge3D)")
    weights: PathText
    final_norm: _checked(Union[bool, None], "true, false or null (each model's own)")
    image_size: _checked(Union[Annotated[int, Field(ge=14, le=4096)], None], "an integer in 14..4096, or null")
    batch_size: PositiveInt
    device: Device


class Teacher(_Section):
    type: TeacherType = ref("LSeg (OpenScene's ScanNet features); lseg_demo in the demo")
    lseg_demo: LsegDemo
    clip: ClipTeacher
    dino: DinoTeacher


class Lift(_Section):
    border: Count = ref("10 pixels of 320x240 (OpenScene)")
    occlusion: Positive = ref("0.25 (OpenScene)")
    occlusion_mode: OcclusionMode = ref("relative (OpenScene)")
    rule: FusionRule = ref("mean (OpenScene)")


class Annotation(_Section):
    fraction: Fraction = ref("1.0; Fig. 5: 0.05, 0.1, 0.5")
    rule: Rule
    seed: Seed


class Augment(_Section):
    elastic: Flag = ref("true: ((0.2, 0.4), (0.8, 1.6)) m, p=0.95")
    rotation: Flag = ref("true: x, y in ±pi/64, z in ±pi")
    scale: Flag = ref("true: U(0.9, 1.1)")
    flip: Flag = ref("true: p=0.95, each horizontal axis p=0.5")
    auto_contrast: Flag = ref("true: p=0.2")
    color_translation: Flag = ref("true: ratio 0.1, p=0.95")
    color_jitter: Flag = ref("true: std 0.05, p=0.95")
    random_translation: Count = ref("100 voxels")
    crop_points: CropPoints = ref("0")
    # the augmentations' numbers (lgseg.config.AUGMENTATIONS); the defaults are the reference's
    elastic_params: ElasticParams = None
    elastic_p: Probability = None
    rotation_x: Pair = None
    rotation_y: Pair = None
    rotation_z: Pair = None
    scale_range: ScaleRange = None
    flip_p: Probability = None
    auto_contrast_p: Probability = None
    auto_contrast_blend: Blend = None
    color_translation_ratio: Probability = None
    color_translation_p: Probability = None
    color_jitter_std: NonNegative = None
    color_jitter_p: Probability = None


class TextSection(_Section):
    encoder: Encoder = ref("clip")
    clip_model: ClipModel = ref("ViT-B/32")
    clip_weights: PathText
    prompt: Prompt = ref("'{}' (plain class names)")
    device: Text = None  # the encoder's torch device (default cpu)
    batch_size: PositiveInt = None


class ModelSection(_Section):
    backend: Backend = ref("minkowski (the authors' engine)")
    block_bn_momentum: Fraction = ref("0.1")
    init: Init = ref("minkowski (MinkowskiEngine's default)")
    bn_momentum: Fraction = None  # the BNs outside residual blocks (default 0.02, the reference's)
    conv1_kernel_size: PositiveInt = None
    final_relu: Flag = None


class Train(_Section):
    launcher: Launcher
    device: Device
    amp: Flag
    num_workers: Count
    cpu_threads: Threads


class Sgd(_Section):
    type: Literal["sgd"]
    lr: Positive = ref("0.05")
    momentum: NonNegative = ref("0.9")
    dampening: NonNegative = ref("0.1")
    weight_decay: NonNegative = ref("0.0001")
    nesterov: Flag = None


class AdamW(_Section):
    type: Literal["adamw"]
    lr: Positive
    weight_decay: NonNegative = None
    betas: Betas = None


class MultiStep(_Section):
    type: Literal["multistep"]
    milestones: Milestones = ref("[120, 150]")
    gamma: Positive = ref("0.3")


class Poly(_Section):
    type: Literal["poly"]
    power: NonNegative = None


class Constant(_Section):
    type: Literal["constant"]


Optimizer = Annotated[Union[Sgd, AdamW], Field(discriminator="type")]
Scheduler = Annotated[Union[MultiStep, Poly, Constant], Field(discriminator="type")]


class Contrastive(_Section):
    t_pos: Real = ref("0.0")
    t_neg: Real = ref("0.6")
    neg_weight: NonNegative = ref("1.0 (lambda)")
    num_negatives: PositiveInt = ref("3")
    form: ContrastiveForm = ref("reference")
    lr: ObjectiveLr = ref("null (pretrain.optimizer.lr, 0.05)")


class SupCon(_Section):
    temperature: Positive = ref("not given (Khosla et al.: 0.1)")
    samples: SupConSamples = ref("5 positives + 5 negatives per point")
    sampling: SupConSampling
    lr: ObjectiveLr


class Csc(_Section):
    temperature: Positive = ref("0.4 (CSC's script)")
    num_matches: PositiveInt = ref("4096")
    inner_radius: NonNegative = ref("0.05 m (2 voxels of 2.5 cm)")
    outer_radius: Positive = ref("0.5 m (20 voxels of 2.5 cm)")
    partition: CscPartition = ref("up_down (CSC's script)")
    nbins_xy: PositiveInt
    nbins_zy: PositiveInt
    weight_inner: Flag = ref("false")
    lr: ObjectiveLr = ref("0.1 (CSC's)")


class Distill(_Section):
    form: DistillForm = ref("cosine (OpenScene)")
    lr: ObjectiveLr = ref("null; OpenScene: Adam 1e-4")


class _Training(_Section):
    epochs: PositiveInt = ref("400")
    batch_size: PositiveInt
    val_every: PositiveInt
    seed: Seed = ref("42")
    optimizer: Optimizer
    scheduler: Scheduler


class Pretrain(_Training):
    model: ModelName = ref("Res16UNet34D")
    max_points: MaxPoints = ref("1400000")
    holdout: ClassNames
    objective: PretrainObjective = ref("language (Ours); supcon, csc: Table 1's SupCon and CSC rows")
    supcon: SupCon
    csc: Csc
    distill: Distill
    contrastive: Contrastive


class Features(_Section):
    per_group: PositiveInt
    seed: Seed
    knn: PositiveInt
    perplexity: Positive


class Finetune(_Training):
    model: ModelName = ref("Res16UNet34D from pretraining, Res16UNet34C from scratch")
    init: FinetuneInit
    weights: PathText
    max_points: MaxPoints = ref("1800000")


class Loss(_Section):
    type: LossType = ref("cb_focal (Ours), ce (CLIP only)")
    gamma: NonNegative = ref("2.0")
    alpha_norm: AlphaNorm


class InstanceSampling(_Section):
    enabled: Flag = ref("true in Ours")
    classes: BankClasses = ref("tail")
    per_scene: Count = ref("5")
    tries: PositiveInt = ref("50")
    rule: Rule
    filter_size: PositiveInt = ref("5")
    tolerance: NonNegative = None  # metres two objects may overlap (default: the voxel size)
    scale: ScaleRange = None  # of a pasted instance (default [0.9, 1.1])


class Insseg(_Training):
    model: ModelName = ref("the pretrained backbone's (Res16UNet34D); the authors' script: Res16UNet34C")
    init: FinetuneInit
    weights: PathText
    max_points: MaxPoints = ref("1800000")
    offset_weight: NonNegative = ref("1.0")
    direction_weight: NonNegative = ref("1.0")
    cluster_radius: Positive = ref("0.02 m (mesh vertices)")
    cluster_min_points: PositiveInt = ref("50")
    cluster_propose_points: Count = ref("250 (mesh vertices)")
    cluster_score: ClusterScore = ref("median (mesh vertices)")
    cluster_score_threshold: ScoreThreshold = ref("null (keep all)")
    cluster_dual_set: Flag = ref("false (PointGroup's dual set: true)")
    cluster_dual_radius: Positive = ref("0.03 m (PointGroup)")


class Evaluate(_Section):
    split: Split
    render: Render


class Tracking(_Section):
    enabled: Flag
    uri: Text
    experiment: Text


class Params(_Section):
    """params.yaml as a whole."""
    data: Data
    frames: Frames
    teacher: Teacher
    lift: Lift
    annotation: Annotation
    augment: Augment
    text: TextSection
    model: ModelSection
    train: Train
    pretrain: Pretrain
    features: Features
    finetune: Finetune
    loss: Loss
    instance_sampling: InstanceSampling
    insseg: Insseg
    evaluate: Evaluate
    tracking: Tracking


# ---- problems as one line each ----

def params_problems(params: Any) -> list[str]:
    """Every problem of ``params`` (params.yaml as loaded), one line each; empty when it is valid."""
    if not isinstance(params, dict):
        return [f"expected a mapping of sections ({', '.join(Params.model_fields)}), got {_shown(params)}"]
    try:
        Params.model_validate(params)
    except ValidationError as e:
        return [_describe(err) for err in e.errors(include_url=False)] + _between_keys(params)
    return _between_keys(params)


def _between_keys(params: dict) -> list[str]:
    """Problems no key shows alone: a data.source whose folder key is empty, CSC's radii out of order
    or more shape-context partitions than its int16 partition ids hold."""
    problems = []
    data = params.get("data")
    root = data.get("processed_root") if isinstance(data, dict) else None
    if isinstance(root, str) and not root.strip() and data.get("source") == "processed":
        problems.append("data.processed_root: empty, but data.source is 'processed'; expected the folder "
                        "Pointcept's ScanNet200 preprocessing wrote (train/, val/ of <scene>/coord.npy, ...)")
    csc = _section(params, "pretrain", "csc")
    inner, outer = csc.get("inner_radius"), csc.get("outer_radius")
    if _real(inner) and _real(outer) and not inner < outer:
        problems.append(f"pretrain.csc.inner_radius: {inner!r} is not below pretrain.csc.outer_radius ({outer!r}); "
                        "expected inner_radius < outer_radius (metres: nearer points are no negatives, the outer "
                        "radius separates the inner partitions from the outer ones)")
    bins = csc.get("nbins_xy"), csc.get("nbins_zy")
    if csc.get("partition") == "shape_context" and all(isinstance(b, int) and b >= 1 for b in bins) \
            and 2 * bins[0] * bins[1] > MAX_CSC_PARTITIONS:
        problems.append(f"pretrain.csc.nbins_xy, pretrain.csc.nbins_zy: 2 x {bins[0]} x {bins[1]} = "
                        f"{2 * bins[0] * bins[1]} shape-context partitions, more than the {MAX_CSC_PARTITIONS} "
                        "lgseg.losses.csc numbers (int16); expected 2 * nbins_xy * nbins_zy <= 32767")
    return problems


MAX_CSC_PARTITIONS = 32767  # lgseg.losses.csc keeps partition ids as int16


def _section(params: dict, *keys: str) -> dict:
    for key in keys:
        params = params.get(key) if isinstance(params, dict) else None
    return params if isinstance(params, dict) else {}


def _real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# A params file is ~11 KB; it is refused beyond this size before YAML parses it (a 50 MB file of
# comments took PyYAML's pure-Python parser minutes; libyaml's, used when PyYAML has it, 1/25 of that).
MAX_PARAMS_BYTES = 256 * 1024
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# A params file holds a few hundred values. YAML aliases share one node, so a chain of ten
# aliases of ten aliases ... holds billions of values in a few lines, which checking (or any walk
# over the loaded data) would expand: more than this many is refused before anything is built.
MAX_VALUES = 100_000


class ParamsFileError(ValueError):
    """A params file that cannot be read, is not YAML, or expands to more than MAX_VALUES values."""


def load_params_file(path: str | Path):
    """The YAML document of a params file, its alias expansion bounded; ParamsFileError (one line, no
    file name: the caller says which file) when it cannot be read, parsed or is an alias bomb."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_PARAMS_BYTES + 1)
        if len(data) > MAX_PARAMS_BYTES:
            raise ParamsFileError(f"more than {MAX_PARAMS_BYTES // 1024} KiB, far more than a params file holds "
                                  "(params.yaml is about 11 KiB); keep only the sections of params.yaml")
        text = data.decode("utf-8")
    except OSError as e:
        raise ParamsFileError(f"cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ParamsFileError(f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    try:
        try:
            node = yaml.compose(text, Loader=_LOADER)
        except yaml.YAMLError:  # PyYAML's own parser again, for its (clearer) message
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        size = _expanded_size(node, {}) if node is not None else 0
        if size > MAX_VALUES:
            raise ParamsFileError(f"its YAML aliases expand to {size:,} values, more than the {MAX_VALUES:,} a "
                                  "params file can hold (an alias bomb?); write the values out instead of aliasing")
        return yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ParamsFileError(f"not valid YAML{where}: {getattr(e, 'problem', None) or e}") from None
    except RecursionError:
        raise ParamsFileError("nested too deeply to be a params file") from None


def _expanded_size(node: yaml.Node, seen: dict) -> int:
    """How many values ``node`` holds once every alias is expanded, each shared node counted once per
    use but computed once (so a bomb is measured, never expanded)."""
    if id(node) in seen:
        return seen[id(node)]
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(child, seen) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, seen) + _expanded_size(v, seen) for k, v in node.value)
    else:
        size = 1
    seen[id(node)] = size
    return size


def check_file(path: str | Path) -> list[str]:
    """``params_problems`` of a YAML file; a file that cannot be read or parsed is one problem."""
    try:
        params = load_params_file(path)
    except ParamsFileError as e:
        return [str(e)]
    return params_problems(params)


def _describe(err: dict) -> str:
    key, parent, field = _locate(err["loc"])
    kind = err["type"]
    if kind == "lgseg":
        return f"{key}: {err['msg']}"
    if kind == "extra_forbidden":
        return _unknown(key, parent)
    if kind == "missing":
        return f"{key}: missing; expected {_expectation(parent, field)}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"{key}: expected a section of keys, got {_shown(err['input'])}"
    if kind == "union_tag_invalid":
        return f"{key}.type: expected one of {', '.join(_sections(parent, field))}, got {_shown(err['ctx']['tag'])}"
    if kind == "union_tag_not_found":
        return f"{key}.type: missing; expected one of {', '.join(_sections(parent, field))}"
    return f"{key}: {err['msg']}"  # none known today; pydantic's own words still name the key


def _sections(model: type[BaseModel] | None, field: str | None) -> dict[str, type[BaseModel]]:
    """The section type(s) of ``model.field``: {"": Section}, or {tag: Section} for a union on ``type``."""
    info = model.model_fields.get(field) if model is not None and field is not None else None
    if info is None:
        return {}
    ann = info.annotation
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return {"": ann}
    if typing.get_origin(ann) in (Union, types.UnionType):
        members = [a for a in typing.get_args(ann) if isinstance(a, type) and issubclass(a, BaseModel)]
        return {typing.get_args(m.model_fields["type"].annotation)[0]: m for m in members}
    return {}


def _locate(loc: tuple) -> tuple[str, type[BaseModel] | None, str | None]:
    """A pydantic error location as params.yaml's dotted key (union tags dropped), the section
    class holding its last part and that part."""
    parts, parent, model, rest = [], None, Params, list(loc)
    while rest:
        part = rest.pop(0)
        parts.append(str(part))
        parent = model
        options = _sections(parent, part)
        if "" in options:
            model = options[""]
        elif options and rest and rest[0] in options:  # a union's tag, not a key
            model = options[rest.pop(0)]
        else:
            model = None
    return ".".join(parts), parent, (str(parts[-1]) if parts else None)


def _expectation(model: type[BaseModel] | None, field: str | None) -> str:
    if _sections(model, field):
        return "a section of keys"
    info = model.model_fields[field] if model is not None and field in model.model_fields else None
    for meta in (info.metadata if info else []):
        if isinstance(meta, WrapValidator) and hasattr(meta.func, "expect"):
            return meta.func.expect
    return "a value"


@functools.cache
def schema_keys(required_only: bool = False, model: type[BaseModel] = Params, prefix: str = "") -> frozenset[str]:
    """Every dotted key the schema knows (for a union on ``type``, the keys of all its members)."""
    keys = set()
    for name, info in model.model_fields.items():
        if required_only and not info.is_required():
            continue
        key = prefix + name
        keys.add(key)
        for section in _sections(model, name).values():
            keys |= schema_keys(required_only, section, key + ".")
    return frozenset(keys)


def _unknown(key: str, parent: type[BaseModel] | None) -> str:
    """Why ``key`` is refused and the nearest valid key(s) (difflib): a sibling first, else a key
    of the same name elsewhere in the file."""
    prefix, _, name = key.rpartition(".")
    siblings = list(parent.model_fields) if parent is not None else []
    kind = _tag(parent)
    if kind is not None and key in schema_keys():  # a key of another optimizer or scheduler type
        return f"{key}: not a key of {prefix} type {kind!r} (its keys: {', '.join(siblings)})"
    near = difflib.get_close_matches(name, siblings, n=1, cutoff=0.6)
    if near:
        return f"{key}: unknown key; did you mean {prefix + '.' if prefix else ''}{near[0]}?"
    names = difflib.get_close_matches(name, sorted({k.rpartition(".")[2] for k in schema_keys()}), cutoff=0.8)
    section = key.partition(".")[0] + "."
    elsewhere = sorted((k for k in schema_keys() if k.rpartition(".")[2] in names),
                       key=lambda k: (not k.startswith(section), k))  # the same section's first
    if elsewhere:
        return f"{key}: unknown key; did you mean {' or '.join(elsewhere)}?"
    return f"{key}: unknown key; the keys {'of ' + prefix if prefix else 'of the file'} are {', '.join(siblings)}"


def _tag(model: type[BaseModel] | None) -> str | None:
    """The ``type`` of a union member section (an optimizer or scheduler type), else None."""
    info = model.model_fields.get("type") if model is not None else None
    if info is None or typing.get_origin(info.annotation) is not Literal:
        return None
    options = typing.get_args(info.annotation)
    return options[0] if len(options) == 1 else None  # loss.type: a choice, not a union's tag
