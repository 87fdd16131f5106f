"""MLflow tracking: one run per stage execution, grouped under one parent run per pipeline execution.

The caller says who runs (a :class:`RunContext`: the stage, the group it belongs to, the commit, the
repository root, the params it declares); this module knows MLflow only. Each stage run carries
those params (flattened), per-epoch metrics with their step, the final metrics of its metric files
and those files as artifacts, and tags for the stage, the commit and the group. The parent run
(one per group and configuration) holds every param and each stage's final metrics as
``<stage>/<key>``, so the MLflow UI lists the groups side by side.

The store is ``tracking.uri`` if set, else ``$MLFLOW_TRACKING_URI``, else ``mlflow.db`` (SQLite)
at the context's root, so runs from copies of the repository land in one database. Tracking never
stops training: if the store fails, one warning says so and the run goes on without it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import math
import os
import socket
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("lgseg.tracking")

FINISHED, FAILED, KILLED = "FINISHED", "FAILED", "KILLED"
# the tag holding the group's name: the README documents it as the filter for one DVC experiment
GROUP_TAG = "dvc.exp_name"
# fail fast on an unreachable server instead of MLflow's default of minutes of retries
_HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                  "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


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


def render_plot_pngs(plot_files, folder: Path) -> list[Path]:
    """A PNG in ``folder`` of each CSV plot file that exists and has a known chart."""
    from lgseg.plots import render_plot

    pngs = []
    for path in plot_files:
        png = Path(folder) / (Path(path).stem + ".png")
        if Path(path).suffix == ".csv" and Path(path).is_file() and render_plot(path, png):
            pngs.append(png)
    return pngs


# ---- the store ---------------------------------------------------------------------------------
def _quiet_mlflow_logs() -> None:
    """After mlflow's import, which sets its own levels: its INFO lines (schema migrations) and
    urllib3's retry warnings are noise in a stage log."""
    for name, level in (("mlflow", logging.WARNING), ("alembic", logging.WARNING), ("urllib3", logging.ERROR),
                        # logs each database error with its traceback before raising it; _safely reports it
                        ("mlflow.store.db.utils", logging.CRITICAL)):
        logging.getLogger(name).setLevel(level)


def open_experiment(uri: str, name: str, root: Path):
    """``(client, experiment id)`` of MLflow experiment ``name`` in the store at ``uri``, created if
    new; our own SQLite store keeps artifacts beside it under ``root`` (not in a copy's temp dir)."""
    from mlflow.tracking import MlflowClient

    _quiet_mlflow_logs()
    with _creation_lock(_sqlite_file(uri)):
        client = MlflowClient(uri)  # creates a new store's schema
        exp = client.get_experiment_by_name(name)
        if exp is not None:
            return client, exp.experiment_id
        location = (root / "mlartifacts").as_uri() if uri.startswith("sqlite:///") else None
        try:
            return client, client.create_experiment(name, artifact_location=location)
        except Exception:  # another process created it first
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise
            return client, exp.experiment_id


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
    def log_outputs(self, metric_files, plot_files) -> None: ...
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
        for k, v in _HTTP_DEFAULTS.items():
            os.environ.setdefault(k, v)
        self._safely(self._start, params, cfg.get("experiment") or "lgseg")

    def _start(self, params: dict, experiment: str) -> None:
        from mlflow.entities import Param

        ctx = self.context
        self.client, exp_id = open_experiment(self.uri, experiment, ctx.root)
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
        log_batch(self.client, self.run_id, metrics=[Metric(k, v, now, step or 0) for k, v in values.items()])

    def log_artifacts(self, paths, folder: str | None = None) -> None:
        """Files as artifacts (in ``folder`` of the run's artifacts, if given)."""
        for p in paths:
            if Path(p).is_file():
                self._safely(self.client.log_artifact, self.run_id, str(p), folder)

    def log_outputs(self, metric_files, plot_files) -> None:
        """The stage's metric files as final metrics (here and on the parent) and as artifacts; its
        other small files (curves, per-class table) as artifacts, with a PNG of each known plot."""
        self._safely(self._log_outputs, list(metric_files), list(plot_files))

    def _log_outputs(self, metric_files: list, plot_files: list) -> None:
        import tempfile
        import time

        from mlflow.entities import Metric

        now, final = int(time.time() * 1000), read_final_metrics(metric_files)
        step = int(final.get("epochs", 0))
        log_batch(self.client, self.run_id,
                  metrics=[Metric(k, v, now, step) for k, v in final.items() if k not in self._logged])
        log_batch(self.client, self.parent_id,
                  metrics=[Metric(f"{self.stage}/{k}", v, now, 0) for k, v in final.items()])
        self.log_artifacts(metric_files + plot_files)
        with tempfile.TemporaryDirectory() as tmp:
            for png in render_plot_pngs(plot_files, Path(tmp)):
                self.client.log_artifact(self.run_id, str(png), "plots")

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
