"""Atomic file writes: a run never leaves a half-written file behind.

Everything jukestyle writes (audio, checkpoints, JSON, CSV) goes through
``atomic_path``: the content is written to a temporary file in the target's
folder and renamed over the target only once it is complete. A rename within
one file system is atomic, so readers see either the old file or the new one.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from jukestyle.errors import JukestyleError, OutputError

FULL_BELOW = 1 << 20  # bytes free under which a failed write is taken for a full disk


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` on success.

    The temporary name keeps the target's suffix so that writers which infer the
    format from the extension (soundfile, matplotlib) still work. On any error the
    temporary file is removed and ``path`` is left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".part{target.suffix}", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, _file_mode())  # mkstemp creates 0600; finished files get the usual permissions
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# The name atomic_path gives a write in progress (or one a killed run left): readers of a folder skip it.
PARTIAL_PATTERN = ".*.part.*"


def finished_files(folder: str | os.PathLike, pattern: str) -> list[Path]:
    """The files under ``folder`` matching ``pattern`` (recursively, sorted), without writes in progress."""
    return sorted(path for path in Path(folder).rglob(pattern) if not path.match(PARTIAL_PATTERN))


@contextlib.contextmanager
def reported_write_errors(path: str | os.PathLike) -> Iterator[None]:
    """Turn a file-system error while writing ``path`` into one line that names it; a full disk says so (libsndfile
    reports it as a bare "System error.")."""
    try:
        yield
    except JukestyleError:
        raise
    except (OSError, RuntimeError) as error:
        raise OutputError(write_error(path, error)) from None


def write_error(path: str | os.PathLike, error: BaseException) -> str:
    path = Path(path)
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        free = None
    # libsndfile reports ENOSPC as "System error." without the errno: what is left free tells
    if getattr(error, "errno", None) == errno.ENOSPC or (free is not None and free < FULL_BELOW):
        return f"{path}: no space left on the device; nothing was written under its name"
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    return f"{path}: cannot be written ({reason})"


def prepare_output(path: str | os.PathLike) -> Path:
    """Check, before any work, that ``path`` can be written, and remove what earlier writes of it that were
    killed mid-way left beside it (``atomic_path``'s temporary files); one line naming the path if it cannot."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _create_and_remove_a_file(target.parent)
    except OSError as error:
        raise JukestyleError(f"{target}: cannot write here ({error.strerror or type(error).__name__})") from None
    for stale in target.parent.glob(f".{glob.escape(target.stem)}.*.part{glob.escape(target.suffix)}"):
        stale.unlink(missing_ok=True)
    return target


def writable_folder(folder: str | os.PathLike) -> bool:
    """True if files can be created in ``folder``, or in the nearest folder above it that exists."""
    place = Path(folder).absolute()
    while not place.exists() and place != place.parent:
        place = place.parent
    try:
        _create_and_remove_a_file(place)
    except OSError:
        return False
    return True


def _create_and_remove_a_file(folder: Path) -> None:
    """The one sure test that ``folder`` can be written: permission bits say nothing for root or read-only
    mounts. Raises OSError if it cannot."""
    fd, probe = tempfile.mkstemp(prefix=".jukestyle.", suffix=".probe", dir=folder)
    os.close(fd)
    os.unlink(probe)


def _file_mode() -> int:
    """0666 minus the process umask, as for a file created with open()."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj: object) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()
