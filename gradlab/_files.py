"""Files: atomic writes, careful reads, and a memory budget for what a file claims to hold.

Writes go to a temporary file in the target's folder, then ``os.replace``: a reader (or a
process killed mid-save) never leaves half a file at the target. Reads go through
:func:`read_bytes`, which turns every way a path can be unusable (missing, a folder, not
readable, too large) into a :class:`GradlabError` naming the file.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import time

from gradlab._errors import GradlabError
from gradlab import _resources

#: A file may claim (in its header) at most this fraction of the memory gradlab may use
#: (:func:`gradlab._resources.available_memory`, which honours GRADLAB_MEMORY_LIMIT): a
#: loaded array is then converted (float64) and used (forward passes, copies), so an array
#: that takes more than half of it cannot be worked with. The header is checked before
#: anything of that size is allocated.
MEMORY_FRACTION = 0.5
#: Used when the memory cannot be asked for (not a POSIX system): 8 GiB.
FALLBACK_MEMORY = 8 * 2**30

#: Temporary files that atomic_write leaves only when its process is killed (SIGKILL, power
#: loss) mid-save are removed by the next save to the same path once they are older than
#: this. A live save of even a 10^8-parameter model (800 MB) takes well under a minute,
#: so an hour-old temporary file belongs to no running writer.
STALE_TMP_SECONDS = 3600.0


def _umask() -> int:
    """The process's umask (reading it means setting it, so set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def memory_limit() -> int:
    """Bytes a file may claim to hold: :data:`MEMORY_FRACTION` of what gradlab may use."""
    limit, _ = _resources.available_memory()
    return int((FALLBACK_MEMORY if limit is None else limit) * MEMORY_FRACTION)


def memory_problem(what: str, nbytes: int) -> str | None:
    """Why ``what`` (``nbytes``, as a file declares it) is refused, or None when it fits."""
    limit = memory_limit()
    if nbytes <= limit:
        return None
    return (f"{what} would need {_resources.format_bytes(nbytes)} of memory, more than gradlab allows a file "
            f"to claim ({_resources.format_bytes(limit)}, half the memory gradlab may use; set GRADLAB_MEMORY_LIMIT to "
            f"change it); refused before reading it")


def check_memory(path: str, what: str, nbytes: int) -> None:
    """Refuse, before allocating, something a file claims that would not fit in memory."""
    why = memory_problem(what, nbytes)
    if why:
        raise GradlabError(f"{path}: {why}")


def file_path(name: str, path) -> str:
    """``path`` as a string, refused unless it is a path to an existing regular file."""
    if not isinstance(path, (str, os.PathLike)):
        raise GradlabError(f"{name} must be a file path; got {name}={path!r}")
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if path == "":
        raise GradlabError(f"{name} must be a file path; got {name}=''")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise GradlabError(f"{name}: no such file: {path}") from None
    except (OSError, ValueError) as exc:  # ValueError: an embedded NUL byte
        why = _why(exc) if isinstance(exc, OSError) else str(exc)
        raise GradlabError(f"{name}: cannot use the path {path!r}: {why}") from None
    if stat.S_ISDIR(st.st_mode):
        raise GradlabError(f"{name}: {path} is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise GradlabError(f"{name}: {path} is not a regular file (a device, pipe or socket)")
    return path


def read_bytes(name: str, path) -> tuple[str, bytes]:
    """``(path, contents)`` of an existing regular file, with clear errors for every failure.

    The file's size is checked against :func:`memory_limit` before it is read.
    """
    path = file_path(name, path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            check_memory(path, "the file", size)
            return path, f.read()
    except OSError as exc:
        raise GradlabError(f"{name}: cannot read {path}: {_why(exc)}") from None


def absolute(path: str, name: str) -> str:
    """``os.path.abspath(path)``; a relative path when the working folder is gone is a GradlabError.

    A shell can sit in a folder that another process deleted; ``os.getcwd()`` then fails,
    and with it every relative path.
    """
    try:
        return os.path.abspath(path)
    except FileNotFoundError:
        raise GradlabError(f"{name}: cannot use the relative path {path!r}: the current folder no longer "
                           f"exists (deleted or moved); cd to an existing folder or give an absolute path") from None


def _folder_of(path: str, name: str) -> str:
    return os.path.dirname(absolute(path, name))


def _write_target(path: str, name: str) -> str:
    """The file a write to ``path`` replaces, refusing what a rename must not replace.

    A symbolic link is followed (the link stays, its target gets the new contents). An
    existing path that is not a regular file -- a device such as /dev/null, a pipe, a
    socket -- is refused: the atomic rename would replace the device itself.
    """
    target = os.path.realpath(absolute(path, name)) if os.path.islink(path) else path
    if os.path.isdir(target):
        raise GradlabError(f"{name}: {path} is a folder; give the path of a file in it, e.g. {os.path.join(path, 'NAME')}")
    if os.path.islink(target):  # realpath stops at a loop of links and returns a link
        raise GradlabError(f"{name}: {path} is a symbolic link in a loop of links (it leads to no file); "
                           f"remove it or give another path")
    if os.path.lexists(target) and not os.path.isfile(target):
        raise GradlabError(
            f"{name}: {path} exists and is not a regular file (a device, pipe or socket); gradlab writes a "
            f"new file and renames it into place, which would replace it: give the path of a file"
        )
    return target


def check_writable(path, *, name: str = "out") -> str:
    """Refuse, up front, a path :func:`atomic_write` could not write.

    Used before long work (training) whose result goes to ``path``, so that a bad
    ``--out`` is an error at once, not after an hour. Creates and removes one empty
    temporary file in the target folder: the only reliable test of writability
    (permissions, read-only file systems, quotas all answer it).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise GradlabError(f"{name} must be a file path; got {name}={path!r}")
    path = os.fspath(path)
    if path == "":
        raise GradlabError(f"{name} must be a file path; got {name}=''")
    if path.endswith(os.sep) or (os.altsep and path.endswith(os.altsep)):
        raise GradlabError(f"{name} must be a file path, not a folder; got {name}={path!r}")
    target = _write_target(path, name)
    folder = _folder_of(target, name)
    if not os.path.isdir(folder):
        raise GradlabError(f"{name}: the folder {folder} does not exist; got {name}={path!r}")
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(target) + ".", suffix=".tmp")
    except OSError as exc:
        raise GradlabError(f"{name}: cannot write in the folder {folder}: {_why(exc)}; got {name}={path!r}") from None
    os.close(fd)
    os.unlink(tmp)
    return path


def check_not_input(path, inputs: dict, *, name: str = "out") -> None:
    """Refuse an output ``path`` that is one of the files a command reads.

    ``inputs`` maps how each input is named (``--data``) to its path, or None. The same file
    reached by another spelling (``./d.mat``, a link) counts: the model or figure would
    silently replace the user's data or model.
    """
    for what, source in inputs.items():
        if source is None or not isinstance(source, (str, os.PathLike)):
            continue
        try:
            same = os.path.samefile(path, source)
        except (OSError, ValueError):  # either does not exist (yet): not the same file
            same = False
        if same:
            raise GradlabError(f"{name} must not be the same file as {what} ({os.fspath(source)}): writing "
                               f"{name} would replace it; got {name}={os.fspath(path)!r}")


def _remove_stale_temporaries(folder: str, base: str) -> None:
    """Remove ``.BASE.*.tmp`` files older than :data:`STALE_TMP_SECONDS` (left by a killed save)."""
    pattern = re.compile(re.escape("." + base + ".") + r"[A-Za-z0-9_]+" + re.escape(".tmp"))
    now = time.time()
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for entry in names:
        if not pattern.fullmatch(entry):
            continue
        full = os.path.join(folder, entry)
        try:
            st = os.lstat(full)
            if stat.S_ISREG(st.st_mode) and now - st.st_mtime > STALE_TMP_SECONDS:
                os.unlink(full)
        except OSError:
            pass  # gone already, or not ours to remove: the save itself does not depend on it


def atomic_write(path, write, *, name: str = "path") -> str:
    """Call ``write(file_object)`` on a temporary file next to ``path``, then rename it.

    A reader never sees a half-written file, and an interrupted write leaves the old file
    (if any) in place. A process killed mid-write (SIGKILL) leaves its temporary file
    ``.NAME.XXXXXXXX.tmp`` behind; the next save to the same path removes such files once
    they are older than :data:`STALE_TMP_SECONDS`. A symbolic link at ``path`` stays a
    link: its target gets the new contents. Returns the path written.

    Raises
    ------
    GradlabError
        ``path`` is not a path, is a folder, exists but is not a regular file (a device such
        as /dev/null, a pipe: the rename would replace it), its folder is missing, or the system refuses
        the write (permissions, read-only file system, disk full); the old file is kept.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise GradlabError(f"{name} must be a file path; got {name}={path!r}")
    path = os.fspath(path)
    target = _write_target(path, name)
    folder = _folder_of(target, name)
    if not os.path.isdir(folder):
        raise GradlabError(f"{name}: the folder {folder} does not exist; got {name}={path!r}")
    _remove_stale_temporaries(folder, os.path.basename(target))
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(target) + ".", suffix=".tmp")
    except OSError as exc:
        raise GradlabError(f"{name}: cannot write {path}: {_why(exc)}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):
            raise GradlabError(f"{name}: cannot write {path}: {_why(exc)}; the previous file (if any) is kept") from None
        raise
    return path
