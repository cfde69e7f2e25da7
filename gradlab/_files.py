"""Atomic file writes: a temporary file in the target's folder, then ``os.replace``."""

from __future__ import annotations

import os
import tempfile

from gradlab._errors import GradlabError


def _umask() -> int:
    """The process's umask (reading it means setting it, so set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path, write, *, name: str = "path") -> str:
    """Call ``write(file_object)`` on a temporary file next to ``path``, then rename it.

    A reader never sees a half-written file, and an interrupted write leaves the old file
    (if any) in place. Returns the path written.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise GradlabError(f"{name} must be a file path; got {name}={path!r}")
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise GradlabError(f"{name}: the folder {folder} does not exist; got {name}={path!r}")
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    except OSError as exc:  # a name too long, a read-only folder: the user's path, not a bug
        raise GradlabError(f"{name}: cannot write {path!r}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):  # e.g. path names a folder, or the disk is full
            raise GradlabError(f"{name}: cannot write {path!r}: {exc.strerror or exc}") from None
        raise
    return path
