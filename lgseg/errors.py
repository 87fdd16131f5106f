"""The one error type users see: it names the file, the problem and the fix."""

from __future__ import annotations

from pathlib import Path


class LgsegError(Exception):
    """An error caused by the user's input or set-up, reported without a traceback by the CLI."""


class InputError(LgsegError):
    """Bad or missing input file: ``<where>: <problem>. <fix>``."""

    def __init__(self, path: str | Path | None, problem: str, fix: str = "", scene: str | None = None):
        self.path = None if path is None else Path(path)
        self.problem = problem
        self.fix = fix
        self.scene = scene
        where = []
        if scene:
            where.append(f"scene {scene}")
        if path is not None:
            where.append(str(path))
        msg = (", ".join(where) + ": " if where else "") + problem
        if fix:
            msg += f". {fix}"
        super().__init__(msg)


def one_line(reason: object) -> str:
    """``reason`` as one line (an exception's text may span several), to go inside an error message;
    an exception is named by its type too ("OSError: ...")."""
    text = f"{type(reason).__name__}: {reason}" if isinstance(reason, BaseException) else str(reason)
    return " ".join(text.split())
