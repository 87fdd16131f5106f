"""Atomic writes: outputs appear complete under their final name or not at all.

Every writer of the package goes through :func:`atomic_file` or :func:`atomic_dir`, so a failed write
is reported in one place: :class:`DiskFullError` names the output and the free space,
:class:`WriteError` the output and why it could not be written (no permission, a read-only disk), and
the previous version of the output stays as it was.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator

from lgseg.errors import InputError, LgsegError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp/mkdtemp create owner-only entries; outputs get the usual permissions instead
_FILE_MODE = 0o666 & ~_umask()
_DIR_MODE = 0o777 & ~_umask()

_NO_SPACE = {errno.ENOSPC, errno.EDQUOT}
# writers that report a short write without the errno: numpy's tofile, torch.save to a path
_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written|unexpected pos \d+ vs \d+")


class DiskFullError(LgsegError):
    """An output could not be written for want of disk space; its previous version is untouched."""

    def __init__(self, path: str | Path, free: int | None):
        self.path, self.free = Path(path), free
        room = "free space unknown" if free is None else f"{_size(free)} free"
        super().__init__(f"{self.path}: cannot write it, the disk is full ({room} in {self.path.parent}); "
                         "its previous version, if any, is unchanged. Make room on that disk, then run the "
                         "same command again")

    def __reduce__(self):  # picklable across worker processes
        return type(self), (self.path, self.free)


class WriteError(LgsegError):
    """An output could not be written for another reason than space (no permission, a read-only disk,
    a file where its folder should be); its previous version is untouched."""

    def __init__(self, path: str | Path, reason: str):
        self.path, self.reason = Path(path), reason
        super().__init__(f"{self.path}: cannot write it ({reason}); its previous version, if any, is "
                         "unchanged. Fix that, then run the same command again")

    def __reduce__(self):  # picklable across worker processes
        return type(self), (self.path, self.reason)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _free_bytes(folder: Path) -> int | None:
    while not folder.exists() and folder != folder.parent:  # the folder itself may not have been made
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc``, or an exception it arose from, is a write that ran out of space."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
            return True
        if isinstance(exc, (OSError, RuntimeError)) and _SHORT_WRITE.search(str(exc)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _in_folder(name, folder: Path) -> bool:
    """Whether the path an OSError names lies in ``folder`` (the output's, where its temporary is)."""
    if not isinstance(name, (str, os.PathLike)):
        return False
    path, folder = os.path.abspath(name), os.path.abspath(folder)
    return path == folder or path.startswith(folder + os.sep)


@contextlib.contextmanager
def _write_errors_named(final: Path) -> Iterator[None]:
    """Turn a failed write of ``final`` into a one-line error naming it: :class:`DiskFullError` for want
    of space, :class:`WriteError` for an OSError on the output's own paths (an error reading some
    other file inside the ``with`` block is left as it is: it is not this output's)."""
    try:
        yield
    except (DiskFullError, WriteError):  # a nested writer already named its own file
        raise
    except (OSError, RuntimeError) as e:
        if _is_disk_full(e):
            raise DiskFullError(final, _free_bytes(final.parent)) from e
        if isinstance(e, OSError) and (_in_folder(e.filename, final.parent) or _in_folder(e.filename, final)):
            where = e.filename if os.path.abspath(e.filename) != os.path.abspath(final) else "it"
            reason = e.strerror or type(e).__name__
            raise WriteError(final, reason if where == "it" else f"{reason}: {where}") from e
        raise


def _temp_prefix(final: Path) -> str:
    return f".{final.name}.tmp-"


def _through_links(final: str | Path) -> Path:
    """Where a write of ``final`` goes: an output that is a symlink (a folder linked to another disk)
    is written at its target, which is replaced, the link left as it is."""
    final = Path(final)
    return Path(os.path.realpath(final)) if final.is_symlink() else final


@contextlib.contextmanager
def atomic_dir(final: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling directory; on success it replaces ``final`` (a link's target, see
    ``_through_links``), on error it is removed."""
    final = _through_links(final)
    with _write_errors_named(final):
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(final), dir=final.parent))
        os.chmod(tmp, _DIR_MODE)
        try:
            yield tmp
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


@contextlib.contextmanager
def atomic_file(final: str | Path, mode: str = "w") -> Iterator:
    """Open a temporary sibling file for writing; it is renamed to ``final`` only on success (a file
    that is a symlink is replaced by the new file, its target left alone: it may be a DVC cache's)."""
    final = Path(final)
    with _write_errors_named(final):
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(final), dir=final.parent)
        try:
            with os.fdopen(fd, mode) as f:
                os.fchmod(fd, _FILE_MODE)
                yield f
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


def remove_stale_temporaries(final: str | Path) -> list[Path]:
    """Remove the temporaries that writes of ``final`` killed midway (SIGKILL, power loss) left beside
    it; returns them. Only names this module makes are touched: ``.<name>.tmp-`` and tempfile's eight
    random characters. Call it where no other process writes ``final``."""
    final = Path(final)
    ours = re.compile(re.escape(_temp_prefix(final)) + r"[a-z0-9_]{8}")
    if not final.parent.is_dir():
        return []
    stale = sorted(p for p in final.parent.iterdir() if ours.fullmatch(p.name))
    for p in stale:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)
    return stale


def write_json(path: str | Path, obj, indent: int = 2) -> None:
    with atomic_file(path) as f:
        json.dump(obj, f, indent=indent)
        f.write("\n")


# ---- reading input files: regular files only, with a size bound ------------------------------

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def open_regular(path: str | Path, what: str, fix: str, limit: int | None = None,
                 scene: str | None = None) -> BinaryIO:
    """Open ``path`` for binary reading if it is a regular file (symlinks followed) of at most ``limit`` bytes.

    O_NONBLOCK lets a FIFO open without waiting for a writer; fstat then judges the very file opened,
    so nothing can be swapped in between the check and the read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise InputError(path, f"{what} is missing", fix, scene=scene) from None
    except OSError as e:
        raise InputError(path, f"cannot read the {what} ({e.strerror})", fix, scene=scene) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = next((name for test, name in _KINDS if test(st.st_mode)), "a special file")
            raise InputError(path, f"not a regular file ({kind}) where the {what} should be", fix, scene=scene)
        if limit is not None and st.st_size > limit:
            raise InputError(path, f"{st.st_size} bytes, more than the {limit} a {what} can hold", fix, scene=scene)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _in_dvc_cache(path: Path) -> bool:
    parts = path.parts
    return any(a == ".dvc" and b == "cache" for a, b in zip(parts, parts[1:]))


def listed_file(folder: str | Path, name: str, what: str, scene: str | None = None) -> Path:
    """``folder/name``, a file a command lists from a folder it was given (a benchmark folder's
    ``<scene>.txt``), refused unread when it resolves outside that folder (a symlink out of it): the
    command would read, and its error messages quote, a file the user never pointed it at. A link
    into a DVC cache (``cache.type: symlink`` checkouts) is DVC's own and allowed."""
    path = Path(folder) / name
    root, target = Path(folder).resolve(), path.resolve()
    if target != root and target.is_relative_to(root) or _in_dvc_cache(target):
        return path
    raise InputError(path, f"the {what} leads outside its folder {root} (to {target}): not read",
                     "put the file itself in the folder (no links out of it)", scene=scene)


def check_regular(path: str | Path, what: str, fix: str, limit: int | None = None, scene: str | None = None) -> None:
    """Raise InputError unless ``path`` is a readable regular file within ``limit`` (see open_regular)."""
    open_regular(path, what, fix, limit, scene).close()


def read_regular(path: str | Path, what: str, fix: str, limit: int, scene: str | None = None) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (checked again as read: it may grow)."""
    with open_regular(path, what, fix, limit, scene) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise InputError(path, f"more than the {limit} bytes a {what} can hold", fix, scene=scene)
    return data


# ---- outputs never overwrite inputs or another command's product --------------------------------

PRODUCT_MARK = ".lgseg-product"  # in a folder lgseg wrote that is not a submission: what it holds


def mark_product(folder: str | Path, product: str) -> None:
    """Record in ``folder`` (an ``atomic_dir``'s temporary, or a folder being filled) what it holds."""
    (Path(folder) / PRODUCT_MARK).write_text(product + "\n")


def product_of(folder: str | Path) -> str | None:
    """What an lgseg product folder holds (its mark), None when unmarked or not a folder."""
    mark = Path(folder) / PRODUCT_MARK
    try:
        return mark.read_text().strip() or None if mark.is_file() else None
    except OSError:
        return None


def overlaps(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` (links followed) are one path or one lies inside the other."""
    a, b = a.resolve(), b.resolve()
    return a == b or a in b.parents or b in a.parents


def check_not_an_input(out: str | Path, inputs, option: str = "--out") -> None:
    """Refuse an output that is one of the command's ``inputs``, lies inside one or holds one: the
    write would replace what the command reads (``inputs``: paths, None entries skipped)."""
    out = Path(out)
    for path in inputs:
        if path is not None and overlaps(out, Path(path)):
            relation = ("is" if out.resolve() == Path(path).resolve()
                        else "lies inside" if Path(path).resolve() in out.resolve().parents else "holds")
            raise InputError(out, f"{relation} {path}, an input of this command: writing there would overwrite "
                             "what the command reads", f"pass another {option}")


def claim_folder(out: str | Path, product: str, inputs=(), option: str = "--out", looks_like=None,
                 owns=None) -> None:
    """Before writing ``product`` (a marked product: raw scans, processed scenes, ground truth) into the
    folder ``out``: refuse when it is or holds an input, when it holds another product (its mark),
    or when it holds files without a mark (lgseg did not write them). An empty folder, or one
    marked with the same product (an earlier run's), is fine; so is an unmarked one that
    ``looks_like(folder)`` recognises as the product (written before products were marked), where
    the product has a shape of its own (ground truth has none: it reads like predictions).

    ``owns(entry)``, for a product that replaces its folder as a whole: whether an entry of the
    folder is one the product consists of. Any other entry (a user's notes beside an earlier
    run's files) is refused even under a matching mark: the replacement would delete it."""
    out = Path(out)
    check_not_an_input(out, inputs, option)
    if out.exists() and not out.is_dir():
        raise InputError(out, f"is a file, not a folder for {product}", f"pass another {option}")
    if not out.is_dir():
        return
    found = product_of(out)
    if found is not None and found != product:
        raise InputError(out, f"holds {found}, not {product}: writing there would replace it",
                         f"pass another {option}, or remove the folder first if it may go")
    entries = sorted(out.iterdir())
    if found is None and entries and not (looks_like is not None and looks_like(out)):
        raise InputError(out, f"holds files lgseg did not write as {product} ({_listed(entries)}): writing there "
                         "would replace them", f"pass a new or empty {option} folder, or remove it first if it may go")
    foreign = [p for p in entries if owns is not None and p.name != PRODUCT_MARK and not owns(p)]
    if foreign:
        raise InputError(out, f"holds {product} and also entries it does not consist of ({_listed(foreign)}): "
                         "writing it again replaces the folder and would delete them",
                         f"move them out of the folder, or pass another {option}")


def _listed(paths, limit: int = 3) -> str:
    names = [p.name + ("/" if p.is_dir() else "") for p in paths]
    return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")


def claim_file(out: str | Path, what: str, inputs=(), ours=None, option: str = "--out") -> None:
    """Before writing the file ``out`` (``what``: metrics JSON, per-class CSV, ...): refuse when it is or
    lies inside an input, is a folder, or exists and ``ours(path)`` says it is not such a file."""
    out = Path(out)
    check_not_an_input(out, inputs, option)
    if out.is_dir():
        raise InputError(out, f"is a folder, not a file for the {what}", f"pass a file path to {option}")
    if out.exists() and ours is not None and not ours(out):
        raise InputError(out, f"exists and is not a {what} lgseg wrote: writing there would replace it",
                         f"pass another {option}, or remove the file first if it may go")
