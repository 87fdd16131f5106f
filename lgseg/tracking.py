"""MLflow tracking: one run per stage execution, grouped under one parent run per pipeline execution.

The caller says who runs (a :class:`RunContext`: the stage, the group it belongs to, the commit, the
repository root, the params it declares, its metric and small files and those of the stages it reads
from); this module knows MLflow only. Each stage run carries those params (flattened), per-epoch
metrics with their step, the final metrics of its metric files, those files and PNGs of its plots
as artifacts, and tags for the stage, the commit and the group. The parent run (one per group and
configuration) holds every param and, from each stage run, the final metrics of that stage and of
every stage upstream of it as ``<stage>/<key>`` (a stage DVC restored instead of running included:
its files are done before a stage downstream starts), the headline numbers again as
``_headline/<key>`` so that they sort first, and those stages' files and PNGs at the top of its
artifacts, where MLflow's compare view finds them.

The store is ``tracking.uri`` if set, else ``$MLFLOW_TRACKING_URI``, else ``mlflow.db`` (SQLite)
at the context's root, so runs from copies of the repository land in one database. A SQLite
store's artifacts go to ``mlartifacts/`` beside the database, found again at every run: the
experiment's artifact location is ``mlflow-artifacts:/<id>``, which ``mlflow ui`` serves from
``./mlartifacts`` (its default), so a moved or copied repository keeps its own. Tracking never
stops training: if the store fails, one warning says so and the run goes on without it.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import hashlib
import json
import logging
import math
import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("lgseg.tracking")

FINISHED, FAILED, KILLED = "FINISHED", "FAILED", "KILLED"
# the tag holding the group's name: docs/tracking.md documents it as the filter for one DVC experiment
GROUP_TAG = "dvc.exp_name"
# the numbers a researcher compares first, logged on the parent run again under HEADLINE_PREFIX: the
# underscore sorts before every stage's lower-case name, in the UI's lists and charts alike
HEADLINE = {"evaluate": ("all.miou", "head.miou", "common.miou", "tail.miou", "all.precision", "all.recall"),
            "insseg-evaluate": ("all.ap", "all.ap50", "all.ap25")}
HEADLINE_PREFIX = "_headline/"
# the per-experiment choice of MLflow's UI between its GenAI and model-training views (the UI itself
# sets it from the experiment page's kind selector); 3.17's UI, with its sidebar switch on, follows
# that switch instead (see docs/tracking.md)
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
# a SQLite store's artifacts, beside the database: the folder `mlflow ui` serves mlflow-artifacts:/ from
ARTIFACTS_DIR = "mlartifacts"
# fail fast on an unreachable server instead of MLflow's default of minutes of retries
_HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                  "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


@dataclass(frozen=True)
class StageFiles:
    """A stage's files that tracking logs, relative to the working directory."""

    stage: str
    metrics: tuple[str, ...] = ()  # JSON metric files: final metrics, and artifacts
    small: tuple[str, ...] = ()  # other small files (curves, per-class tables): artifacts, with PNGs of plots


@dataclass(frozen=True)
class RunContext:
    """Who is running, as the caller (a stage script) knows it; passed in, never read from a pipeline
    tool's environment here."""

    stage: str
    root: Path  # the repository: a default SQLite store and its artifacts live there
    group: str = "workspace"  # runs of one group and configuration hang under one parent run
    commit: str | None = None
    source: str | None = None  # the script, tagged as mlflow.source.name
    params: tuple[str, ...] = ()  # the param keys the stage declares (``"train"``, ``"data.voxel_size"``)
    metrics: tuple[str, ...] = ()  # this stage's metric files
    small: tuple[str, ...] = ()  # this stage's small files
    # the stages whose outputs this one reads, directly or not, in pipeline order: each ran or was
    # restored before this one started, so their files as they stand belong to this pipeline execution
    upstream: tuple[StageFiles, ...] = ()

    @property
    def pipeline(self) -> tuple[StageFiles, ...]:
        """The upstream stages' files, then this stage's own."""
        return (*self.upstream, StageFiles(self.stage, self.metrics, self.small))


# ---- params and metrics as MLflow takes them ---------------------------------------------------
def tracking_uri(cfg: dict, root: Path) -> str:
    return cfg.get("uri") or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{root / 'mlflow.db'}"


def flatten(tree: dict, prefix: str = "") -> dict:
    """``{"a": {"b": 1}} -> {"a.b": 1}``; lists stay values."""
    out = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def numeric(metrics: dict) -> dict:
    """The finite numbers of a flat dict (MLflow metrics are floats; NaN marks 'not measured')."""
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def select_params(params: dict, keys) -> dict:
    """The flattened values of dotted param keys (``"train"``, ``"data.voxel_size"``)."""
    out = {}
    for key in keys:
        node = params
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                node = None
                break
            node = node[part]
        out.update(flatten(node, key + ".") if isinstance(node, dict) else {key: node})
    return out


def _param_value(v) -> str:
    return json.dumps(v) if isinstance(v, (list, dict)) else str(v)


def read_final_metrics(metric_files) -> dict:
    """The finite numbers of the JSON metric files that exist, flattened."""
    final = {}
    for path in metric_files:
        if Path(path).is_file():
            final.update(numeric(flatten(json.loads(Path(path).read_text()))))
    return final


def plot_name(csv_path) -> str:
    """The PNG's name for what ``lgseg.plots.render_plot`` draws of the table (by its columns, as that
    module recognises them); a run's curves keep the CSV's name (``finetune_curve``, ``finetune_val``)."""
    from lgseg import plots

    with open(csv_path, newline="") as f:
        columns = set(next(csv.reader(f), []))
    if {"iou", "split", "train_points"} <= columns:
        return "long_tail_iou_vs_train_points.png"  # and the best/worst chart beside it, named by plots
    if {"iou", "split"} <= columns:
        return getattr(plots, "PER_CLASS_PNG", "per_class_iou.png")
    if {"pair", "points"} <= columns:
        return "most_confused_pairs.png"
    return Path(csv_path).stem + ".png"


def render_plot_pngs(plot_files, folder: Path) -> list[Path]:
    """PNGs in ``folder`` of each CSV plot file that exists and has a known chart, named for what
    they show (with any further PNG the chart writes beside it)."""
    from lgseg.plots import render_plot

    pngs = []
    for i, path in enumerate(plot_files):
        if Path(path).suffix != ".csv" or not Path(path).is_file():
            continue
        own = Path(folder) / str(i)  # one folder per table: what appears there is its chart
        own.mkdir(parents=True)
        if render_plot(path, own / plot_name(path)):
            pngs += sorted(own.glob("*.png"))
    return pngs


# ---- the store ---------------------------------------------------------------------------------
def _quiet_mlflow_logs() -> None:
    """After mlflow's import, which sets its own levels: its INFO lines (schema migrations) and
    urllib3's retry warnings are noise in a stage log."""
    for name, level in (("mlflow", logging.WARNING), ("alembic", logging.WARNING), ("urllib3", logging.ERROR),
                        # logs each database error with its traceback before raising it; _safely reports it
                        ("mlflow.store.db.utils", logging.CRITICAL)):
        logging.getLogger(name).setLevel(level)


def open_experiment(uri: str, name: str):
    """``(client, experiment id)`` of MLflow experiment ``name`` in the store at ``uri``, created if
    new and opening in the UI's model-training view; in a SQLite store its artifact location is made
    relative to the database's folder (see :func:`artifacts_root`)."""
    from mlflow.tracking import MlflowClient

    _quiet_mlflow_logs()
    with _creation_lock(_sqlite_file(uri)):
        client = MlflowClient(uri)  # creates a new store's schema
        exp = client.get_experiment_by_name(name)
        if exp is None:
            try:
                client.create_experiment(name, tags=dict([EXPERIMENT_KIND]))
            except Exception:  # another process created it first
                if client.get_experiment_by_name(name) is None:
                    raise
            exp = client.get_experiment_by_name(name)
        if _sqlite_file(uri) is not None and _is_local(exp.artifact_location):
            _relocate_artifacts(uri, exp.experiment_id)
        if EXPERIMENT_KIND[0] not in exp.tags:  # an older store's experiment; a kind set in the UI stays
            client.set_experiment_tag(exp.experiment_id, *EXPERIMENT_KIND)
        return client, exp.experiment_id


def _is_local(location: str | None) -> bool:
    """A folder on this machine (``file:`` or a bare path): the copy's that created it, maybe not ours."""
    from urllib.parse import urlparse

    return not location or urlparse(location).scheme in ("", "file")


def _relocate_artifacts(uri: str, exp_id: str) -> None:
    """Point experiment ``exp_id`` of a SQLite store at ``mlflow-artifacts:/<id>``: MLflow's API
    cannot change an experiment's artifact location, and its own stores take a folder as an absolute
    path (of the copy that created it). Runs logged before keep theirs."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(uri)
    try:
        with engine.begin() as db:
            db.execute(sqlalchemy.text("UPDATE experiments SET artifact_location = :loc WHERE experiment_id = :id"),
                       {"loc": f"mlflow-artifacts:/{exp_id}", "id": int(exp_id)})
    finally:
        engine.dispose()


def artifacts_root(uri: str) -> Path | None:
    """Where a SQLite store's ``mlflow-artifacts:`` URIs lead: ``mlartifacts/`` beside the database,
    as ``mlflow ui`` started in that folder serves them (None for other stores: their client writes)."""
    db = _sqlite_file(uri)
    return db.resolve().parent / ARTIFACTS_DIR if db is not None else None


def run_artifacts_dir(artifact_uri: str, uri: str) -> Path | None:
    """The folder of a run's ``mlflow-artifacts:`` artifact URI in a SQLite store, else None."""
    from urllib.parse import urlparse

    root = artifacts_root(uri)
    if root is None or not artifact_uri.startswith("mlflow-artifacts:"):
        return None
    return root / urlparse(artifact_uri).path.lstrip("/")


def log_batch(client, run_id: str, metrics=(), params=()) -> None:
    metrics, params = list(metrics), list(params)
    for i in range(0, max(len(metrics), len(params)), 100):  # MLflow's per-request limit
        client.log_batch(run_id, metrics=metrics[i:i + 100], params=params[i:i + 100])


def _failure(exc: BaseException) -> str:
    """What went wrong, from the innermost cause: MLflow and SQLAlchemy wrap the database's own
    message in lines about sessions and autoflush."""
    root, seen = exc, set()
    while id(root) not in seen and (root.__cause__ or getattr(root, "orig", None)) is not None:
        seen.add(id(root))
        root = root.__cause__ or root.orig
    first_line = (str(root).splitlines() or [""])[0][:300]
    if "readonly database" in first_line or getattr(root, "errno", None) == errno.EROFS:
        return f"is read-only ({first_line})"
    return f"failed ({type(root).__name__}: {first_line})"


def _sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` store (also in SQLite's ``file:`` URI form), else None."""
    if not uri.startswith("sqlite:"):
        return None
    from sqlalchemy.engine import make_url

    db = make_url(uri).database or ""
    db = db.removeprefix("file:").split("?")[0]
    return Path(db) if db and db != ":memory:" else None


def _lock(lock: Path) -> int | None:
    """An open descriptor holding ``flock(LOCK_EX)`` on ``lock``, which still has that name."""
    while True:
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)  # as MLflow does for the database
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:  # a folder we cannot write in: no process can create a store there either
            return None
        fcntl.flock(fd, fcntl.LOCK_EX)
        with contextlib.suppress(FileNotFoundError):
            if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                return fd
        os.close(fd)  # its last holder removed it meanwhile: lock the one there now


@contextlib.contextmanager
def _creation_lock(db: Path | None):
    """Serialise the first connection to a SQLite store among processes: on a new store MLflow creates
    the schema, and two processes doing that at once collide (``table ... already exists``). The lock
    file beside the database goes with its holder."""
    fd = _lock(db.with_name(f".{db.name}.lock")) if db is not None else None
    try:
        yield
    finally:
        if fd is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(db.with_name(f".{db.name}.lock"))
            os.close(fd)


# ---- runs --------------------------------------------------------------------------------------
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_dead_runs(client, exp_id: str) -> None:
    """Runs of this host left RUNNING by a process that died without a word (SIGKILL, power loss)
    become KILLED."""
    host = socket.gethostname()
    stale = client.search_runs(
        [exp_id], f"attributes.status = 'RUNNING' and tags.`lgseg.host` = '{host}'", max_results=1000)
    for run in stale:
        pid = run.data.tags.get("lgseg.pid", "")
        if pid.isdigit() and not _pid_alive(int(pid)):
            client.set_terminated(run.info.run_id, KILLED)
            log.info("marked MLflow run %s KILLED: its process %s is gone", run.info.run_id, pid)


def pipeline_key(group: str, params: dict) -> str:
    """One parent run per group and configuration."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f"{group}-{digest}"


def pipeline_run(client, exp_id: str, params: dict, group: str, tags: dict) -> str:
    """The parent run of ``tags["lgseg.pipeline"]``, created with every param if it is new."""
    from mlflow.entities import Param

    found = client.search_runs(
        [exp_id], f"tags.`lgseg.pipeline` = '{tags['lgseg.pipeline']}' and tags.`lgseg.kind` = 'pipeline'",
        max_results=1)
    if found:
        return found[0].info.run_id
    run = client.create_run(exp_id, run_name=group, tags={**tags, "lgseg.kind": "pipeline"})
    log_batch(client, run.info.run_id, params=[Param(k, _param_value(v)) for k, v in flatten(params).items()])
    return run.info.run_id


# ---- the tracker a stage uses ------------------------------------------------------------------
class NullTracker:
    """Tracking switched off (or not this process's job: torchrun ranks other than 0)."""

    enabled = False

    def log_metrics(self, metrics: dict, step: int | None = None) -> None: ...
    def log_artifacts(self, paths, folder: str | None = None) -> None: ...
    def log_outputs(self) -> None: ...
    def end(self, status: str) -> None: ...


class StageTracker(NullTracker):
    """The MLflow run of one stage execution; every call fails soft (one warning, then off)."""

    enabled = True

    def __init__(self, context: RunContext, params: dict):
        self.context, self.stage = context, context.stage
        cfg = params.get("tracking") or {}
        self.uri = tracking_uri(cfg, context.root)
        self.run_id = self.parent_id = None
        self._logged: set[str] = set()
        self._step = 0  # the last epoch logged: the step of the final metrics
        self._dirs: dict[str, Path | None] = {}  # run id -> its artifact folder, where we write it ourselves
        for k, v in _HTTP_DEFAULTS.items():
            os.environ.setdefault(k, v)
        self._safely(self._start, params, cfg.get("experiment") or "lgseg")

    def _start(self, params: dict, experiment: str) -> None:
        from mlflow.entities import Param

        ctx = self.context
        self.client, exp_id = open_experiment(self.uri, experiment)
        reap_dead_runs(self.client, exp_id)
        tags = {"lgseg.pipeline": pipeline_key(ctx.group, params), GROUP_TAG: ctx.group,
                "lgseg.host": socket.gethostname(), "lgseg.pid": str(os.getpid()),
                **({"mlflow.source.git.commit": ctx.commit} if ctx.commit else {})}
        self.parent_id = pipeline_run(self.client, exp_id, params, ctx.group, tags)
        run = self.client.create_run(exp_id, run_name=self.stage, tags={
            **tags, "lgseg.kind": "stage", "lgseg.stage": self.stage, "mlflow.parentRunId": self.parent_id,
            **({"mlflow.source.name": ctx.source} if ctx.source else {})})
        self.run_id = run.info.run_id
        flat = select_params(params, ctx.params)
        log_batch(self.client, self.run_id, params=[Param(k, _param_value(v)) for k, v in flat.items()])
        self.client.set_tag(self.parent_id, "lgseg.pid", str(os.getpid()))
        self.client.update_run(self.parent_id, status="RUNNING")
        log.info("MLflow run %s (stage %s, %s) in %s", self.run_id, self.stage, ctx.group, self.uri)

    def _safely(self, fn, *args) -> None:
        if not self.enabled:
            return
        try:
            fn(*args)
        except Exception as e:  # the store is down or refuses: the stage's own files are unaffected
            self.enabled = False
            log.warning("MLflow tracking at %s %s; the stage goes on without it and its metrics still go to "
                        "DVC's files", self.uri, _failure(e))

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        self._safely(self._log_metrics, metrics, step)

    def _log_metrics(self, metrics: dict, step: int | None) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        values = numeric(flatten(metrics))
        self._logged.update(values)
        self._step = max(self._step, step or 0)
        log_batch(self.client, self.run_id, metrics=[Metric(k, v, now, step or 0) for k, v in values.items()])

    def _artifact(self, run_id: str, path, folder: str | None = None) -> None:
        """One file into a run's artifacts: a SQLite store's into the folder its ``mlflow-artifacts:``
        URI means from this store (MLflow's client resolves that scheme through a server only)."""
        if run_id not in self._dirs:
            self._dirs[run_id] = run_artifacts_dir(self.client.get_run(run_id).info.artifact_uri, self.uri)
        if self._dirs[run_id] is None:
            self.client.log_artifact(run_id, str(path), folder)
            return
        from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

        LocalArtifactRepository(str(self._dirs[run_id])).log_artifact(str(path), folder)

    def log_artifacts(self, paths, folder: str | None = None) -> None:
        """Files as artifacts of the stage run (in ``folder`` of its artifacts, if given)."""
        for p in paths:
            if Path(p).is_file():
                self._safely(self._artifact, self.run_id, p, folder)

    def log_outputs(self) -> None:
        """The stage's metric files as final metrics and, with its small files and PNGs of its plots
        (in ``plots/``), as artifacts; on the parent run the same of this stage and of every stage
        upstream of it, all at the top of its artifacts."""
        self._safely(self._log_outputs)

    def _log_outputs(self) -> None:
        import tempfile
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        own = read_final_metrics(self.context.metrics)
        log_batch(self.client, self.run_id,
                  metrics=[Metric(k, v, now, self._step) for k, v in own.items() if k not in self._logged])
        parent_has = self.client.get_run(self.parent_id).data.metrics
        final = {}
        for files in self.context.pipeline:
            values = own if files.stage == self.stage else read_final_metrics(files.metrics)
            final.update({f"{files.stage}/{k}": v for k, v in values.items()})
            final.update({HEADLINE_PREFIX + k: values[k] for k in HEADLINE.get(files.stage, ()) if k in values})
        log_batch(self.client, self.parent_id,  # a value already there stays one point, not a second one
                  metrics=[Metric(k, v, now, 0) for k, v in final.items() if parent_has.get(k) != v])

        with tempfile.TemporaryDirectory() as tmp:
            # the parent's at the top of its artifacts: MLflow's compare view shows those side by side
            for_parent: dict[str, Path] = {}
            for files in self.context.pipeline:
                pngs = render_plot_pngs(files.small, Path(tmp) / files.stage)
                paths = [Path(p) for p in (*files.metrics, *files.small) if Path(p).is_file()]
                if files.stage == self.stage:
                    for p in paths:
                        self._artifact(self.run_id, p)
                    for png in pngs:
                        self._artifact(self.run_id, png, "plots")
                for p in (*paths, *pngs):
                    name = p.name if p.name not in for_parent else f"{files.stage}_{p.name}"  # one name, two stages
                    for_parent[name] = p
            for name, p in for_parent.items():
                if p.name != name:
                    (Path(tmp) / "renamed").mkdir(exist_ok=True)
                    p = Path(shutil.copy(p, Path(tmp) / "renamed" / name))
                self._artifact(self.parent_id, p)

    def end(self, status: str) -> None:
        def _end():
            self.client.set_terminated(self.run_id, status)
            self.client.set_terminated(self.parent_id, status)  # the pipeline is as far as its last stage

        if self.run_id is not None:
            self._safely(_end)


def start_stage_run(context: RunContext, params: dict) -> NullTracker:
    """A tracker for this stage execution: MLflow's unless ``tracking.enabled`` is false or this is
    not the first torchrun process."""
    if not (params.get("tracking") or {}).get("enabled", True) or os.environ.get("RANK", "0") != "0":
        return NullTracker()
    return StageTracker(context, params)
