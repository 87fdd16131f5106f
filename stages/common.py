"""What every stage script shares: its params, its paths, its MLflow run, its exit. Stages run from
the repo root (DVC's wdir); dvc.yaml passes each stage its paths as arguments and says which params
it reads and which metric and small files it writes, and the MLflow run logs exactly those."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from dvc_context import run_context, stage_name

PARAMS = Path("params.yaml")


def load_params():
    """params.yaml as loaded, its YAML aliases bounded (``lgseg.params_schema.load_params_file``)."""
    from lgseg.params_schema import load_params_file

    return load_params_file(PARAMS)


def changed_params(started: dict, keys) -> list[str]:
    """The declared params (``keys``: dvc.yaml's entries for the stage, sections or dotted keys; empty:
    all) whose value in params.yaml now differs from ``started``, the params the stage ran with:
    another `dvc exp run` in this workspace rewrote the file meanwhile."""
    from lgseg.params_schema import ParamsFileError

    try:
        now = load_params()
    except ParamsFileError as e:
        return [f"(the file: {e})"]

    def value(tree, dotted):
        for part in dotted.split("."):
            tree = tree.get(part) if isinstance(tree, dict) else None
        return tree

    keys = list(keys) or sorted(set(started) | set(now or {}))
    return [f"{k}: {value(started, k)!r} -> {value(now, k)!r}" for k in keys if value(started, k) != value(now, k)]


def parse_paths(names) -> argparse.Namespace:
    """``--<name> PATH`` for each of ``names``, all required: dvc.yaml's cmd is where they are set."""
    parser = argparse.ArgumentParser(description=(sys.modules["__main__"].__doc__ or "").strip() or None)
    for name in names:
        parser.add_argument(f"--{name}", required=True, metavar="PATH")
    return parser.parse_args()


# What a training stage's DVC metrics file holds: the numbers a researcher compares across runs.
# The bookkeeping (epoch counters, steps, lr, throughput, data share) is in the curve CSVs the
# stage writes beside it, outputs that dvc.yaml does not declare as metrics.
SPLIT_KEYS = ("val_miou_200", "val_miou_head", "val_miou_common", "val_miou_tail")


def write_final_metrics(path: str, result: dict, kind: str) -> None:
    """The training stage's headline numbers as its DVC metrics file (``kind``: pretrain, finetune or
    insseg).

    pretrain: its last validation, the zero-shot readout through the text anchors: ``val_miou`` and
    each class group's numbers (``val_miou_holdout``, ``val_miou_holdout_chance``); ``{}`` when the
    objective has no readout. finetune and insseg: ``best_val_miou``, the best validation mIoU of the
    run (of insseg's semantic head; null when it never validated).
    """
    import math

    from lgseg.fileio import write_json

    def defined(v) -> bool:  # NaN (undefined: no class of a group in val) is no JSON number
        return v is not None and not (isinstance(v, float) and math.isnan(v))

    validated = [h for h in result["history"] if defined(h.get("val_miou"))]
    if kind == "pretrain":
        last = validated[-1] if validated else {}
        out = {k: (v if defined(v) else None) for k, v in last.items()
               if k.startswith("val_miou") and k not in SPLIT_KEYS}
    elif kind in ("finetune", "insseg"):
        out = {"best_val_miou": max((h["val_miou"] for h in validated), default=None)}
    else:
        raise ValueError(f"kind must be pretrain, finetune or insseg, not {kind!r}")
    write_json(path, out)


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler, `kill`, a stopped `dvc repro`'s process group) as an exception, so the run
    ends as KILLED. (`dvc queue kill` sends SIGINT, which Python raises as KeyboardInterrupt.)"""


_signalled: list[int] = []  # the signal that stopped the stage, if one did


def _ignore(signum, frame) -> None:
    pass


def _kill_children() -> None:
    """SIGKILL this process's data-loader workers (they only read): one forked while the stop's SIGTERM
    was being sent, or one blocked flushing its queue to a parent that is gone, would outlive `dvc`."""
    import multiprocessing

    for child in multiprocessing.active_children():
        child.kill()


def _on_sigterm(main_pid: int):
    def handler(signum, frame):
        if os.getpid() != main_pid:  # a forked data-loader worker: die as the signal means
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        if not _signalled:  # once: a second SIGTERM must not interrupt the cleanup of the first
            _signalled.append(signum)
            # the data-loader workers got the signal too and die: torch's SIGCHLD handler would report
            # each as an error (a traceback from the loader's __del__), where it is the stop we asked for.
            # A no-op, not SIG_DFL: a SIGCHLD already caught but not yet handled would then be reported
            # by Python as "Signal 17 ignored due to race condition", with a traceback
            signal.signal(signal.SIGCHLD, _ignore)
            raise Terminated()

    return handler


def run(main, check_params: bool = True, paths=None) -> None:
    """Run ``main(params, tracker)`` as one MLflow run; user errors print one clear line, not a traceback.
    ``paths``: names of the ``--<name> PATH`` arguments the stage takes (then ``main(params, tracker,
    args)``). ``check_params``: first check the whole params.yaml against its schema (off only for
    test stages whose params are not the project's)."""
    import logging

    from lgseg.errors import LgsegError
    from lgseg.params_schema import params_problems
    from lgseg.tracking import FAILED, FINISHED, KILLED, start_stage_run

    from lgseg.params_schema import ParamsFileError

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    stage, name = stage_name(), Path(sys.argv[0]).stem
    try:
        params = load_params()
    except ParamsFileError as e:
        print(f"{name}: error: {PARAMS}: {e}", file=sys.stderr)
        sys.exit(1)
    problems = params_problems(params) if check_params else []
    if problems:  # before any work: a bad `dvc exp run -S` fails in seconds, every problem at once
        print("\n".join(f"{name}: error: {PARAMS}: {p}" for p in problems), file=sys.stderr)
        sys.exit(1)
    args = parse_paths(paths) if paths is not None else None  # after the params: they are what -S changes
    context = run_context(stage)
    tracker = start_stage_run(context, params)
    signal.signal(signal.SIGTERM, _on_sigterm(os.getpid()))
    status = FAILED
    try:
        if args is None:
            main(params, tracker)
        else:
            main(params, tracker, args)
        drift = changed_params(params, context.params)
        if drift:
            raise LgsegError(f"{PARAMS} changed while this stage ran ({'; '.join(drift[:3])}), so DVC would "
                             "record values its outputs were not made with; another `dvc exp run` in this "
                             "workspace? Run experiments side by side with `dvc exp run --queue` (or --temp), "
                             "then run this one again")
        tracker.log_outputs()
        status = FINISHED
    except BaseException as e:
        # a SIGTERM may surface as another exception first (a data-loader worker it killed): still a stop
        if isinstance(e, KeyboardInterrupt) or _signalled:
            status = KILLED
            print(f"{name}: interrupted", file=sys.stderr)
            code = 143 if _signalled or isinstance(e, Terminated) else 130
            tracker.end(status)
            # every write was atomic and the interrupted one is gone: no interpreter teardown (seconds of
            # data-loader joins and module finalisers) that would outlive the `dvc` that SIGTERM stopped
            _kill_children()
            logging.shutdown()
            sys.stderr.flush()
            sys.stdout.flush()
            os._exit(code)
        if isinstance(e, LgsegError):
            print(f"{name}: error: {e}", file=sys.stderr)
            sys.exit(1)
        raise
    finally:
        if status != KILLED:
            tracker.end(status)
