"""Loading and guarding the user's code: one policy for every place gradlab calls it.

The user's module is imported from a file or a module name (:func:`load_function`); the
user's functions -- a checked gradient, a gradient source, a training callback -- are
called under :func:`user_code`, and whatever they raise is reported as a
:class:`~gradlab._errors.UserCodeError` naming the function, the exception and the
innermost line of the user's own code where it was raised (:func:`raised_where`).

What the user's code raises is reported, whatever it is -- an Exception, SystemExit
(``sys.exit()`` in the module or function), GeneratorExit or the user's own BaseException
subclass. Only KeyboardInterrupt passes: it is the person at the keyboard, not the code.

The same reports come from code run in another process (:mod:`gradlab._isolation`): there
the exception is described where it was raised, and :class:`RaisedInWorker` carries the
description back, so :func:`one_line` and :func:`raised_where` give the same words.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import inspect
import os
import sys
import sysconfig
import traceback

from gradlab import _files
from gradlab import _validate as v
from gradlab._errors import GradlabError, UserCodeError, UserCodeStopped
from gradlab._report import with_article

__all__ = ["ExitCalled", "RaisedInWorker", "user_code", "load_function", "load_target", "load_module",
           "check_signature", "guarded", "fn_name", "one_line", "raised_where", "short_path", "code_file",
           "function_kind", "names_a_file", "source_file"]

#: gradlab's own folder: frames inside it are never "the user's line".
_OWN = os.path.dirname(os.path.abspath(__file__))


class ExitCalled(SystemExit):
    """Raised in place of ``os._exit`` while the user's code runs (see :func:`user_code`)."""

    def __str__(self) -> str:
        return f"os._exit({self.code}) was called"


@contextlib.contextmanager
def user_code():
    """While the user's code runs, ``os._exit`` raises :class:`ExitCalled` instead.

    ``sys.exit`` raises SystemExit, which the callers report; ``os._exit`` would end the
    process at once with the status the code chose -- ``gradlab check`` would stop with no
    verdict and, for ``os._exit(0)``, a status CI reads as a pass. A process forked by the
    user's code (multiprocessing ends its children with ``os._exit``) gets the real one.
    """
    real, pid = os._exit, os.getpid()

    def _exit(status=0):
        if os.getpid() != pid:
            real(status)
        raise ExitCalled(status)

    os._exit = _exit
    try:
        yield
    finally:
        os._exit = real


class RaisedInWorker(UserCodeError):
    """What the user's code raised in the process that runs it, as described there.

    ``summary`` is :func:`one_line` of the exception and ``where`` :func:`raised_where`,
    both computed in that process (where the traceback is); ``traceback`` is the formatted
    traceback, for a person debugging.
    """

    def __init__(self, name: str, summary: str, where: str, traceback_text: str = ""):
        super().__init__(f"{name} raised {summary}{where}")
        self.summary, self.where, self.traceback = summary, where, traceback_text


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line, even when the exception's ``str()`` raises."""
    if isinstance(exc, RaisedInWorker):
        return exc.summary
    try:
        text = " ".join(str(exc).split())
    except Exception as inner:  # the user's exception class may fail to describe itself
        text = f"(no message: str() of it raised {type(inner).__name__})"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def short_path(path: str) -> str:
    """A path as a person would type it: relative when it lies under the working folder."""
    try:
        rel = os.path.relpath(path)
    except (ValueError, OSError):  # another drive (Windows); the working folder was deleted
        return path
    return path if rel.startswith(os.pardir) else rel


def _library_dirs() -> tuple[str, ...]:
    """Folders of installed code (the standard library, site-packages): never "the user's"."""
    paths = sysconfig.get_paths()
    dirs = {os.path.abspath(paths[k]) for k in ("stdlib", "platstdlib", "purelib", "platlib") if paths.get(k)}
    return tuple(sorted(d + os.sep for d in dirs))


_LIBRARIES = _library_dirs()


def _is_users(filename: str, user_file: str | None) -> bool:
    """Is this frame's file the user's own code (not gradlab, not a library, not ``<string>``)?"""
    if filename.startswith("<"):
        return False
    path = os.path.abspath(filename)
    if path.startswith(_OWN + os.sep):
        return False
    if user_file and path.startswith(os.path.dirname(os.path.abspath(user_file)) + os.sep):
        return True  # the user's folder, even when it was installed among the libraries
    return not path.startswith(_LIBRARIES) and os.sep + "site-packages" + os.sep not in path


def raised_where(exc: BaseException, user_file: str | None) -> str:
    """`` (FILE, line N, in FUNC)``: where the user's code raised -- the innermost frame of
    the user's own files (the target's file, its folder, any file outside gradlab and the
    installed libraries: a helper module of the user's counts), else the innermost frame
    outside gradlab (the error surfaced inside numpy, called from code gradlab cannot see)."""
    if isinstance(exc, RaisedInWorker):
        return exc.where
    frames = traceback.extract_tb(exc.__traceback__)
    frames = [f for f in frames if not os.path.abspath(f.filename).startswith(_OWN + os.sep)]
    if not frames:
        return ""
    mine = [f for f in frames if _is_users(f.filename, user_file)]
    frame = (mine or frames)[-1]
    return f" ({short_path(frame.filename)}, line {frame.lineno}, in {frame.name})"


def fn_name(fn) -> str:
    """How a report names the user's function."""
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__


def code_file(fn) -> str | None:
    """The file a Python function was defined in (None for builtins and C functions)."""
    try:
        code = getattr(inspect.unwrap(fn), "__code__", None)
    except ValueError:  # a cycle of __wrapped__
        code = getattr(fn, "__code__", None)
    return code.co_filename if code is not None else None


# --------------------------------------------------------------------------------------
# Loading: PATH.py:FUNC or module:FUNC
# --------------------------------------------------------------------------------------


def load_function(target: str, name: str = "target", *, shown: str | None = None):
    """Load ``PATH.py:FUNC`` or ``module:FUNC`` and return the function.

    Parameters
    ----------
    target : str
        A Python file and a function name (``student.py:my_gradient``) or an importable
        module and a function name (``mypackage.grads:my_gradient``).
    name : str
        How error messages name the argument (the CLI's ``target`` or ``--cost``).
    shown : str, optional
        The argument as the user gave it, when ``target`` was made from it (the CLI's
        ``--layer FILE.py:FORWARD:BACKWARD``): "no such function" messages show it.

    Returns
    -------
    callable

    Raises
    ------
    GradlabError
        Malformed target, file or module not found, a folder or a file that is not
        Python source (``.py``), an unreadable file, no such function, not callable.
    UserCodeError
        Importing the user's module failed: a syntax error (the message names the file
        and line) or an exception while running it (the message names the exception and
        where it was raised). Also ``SystemExit``: a module that calls ``sys.exit()`` does
        not end gradlab.
    """
    if not isinstance(target, str) or target.count(":") < 1:
        raise v.fail(name, target, "PATH.py:FUNC or module:FUNC")
    where, _, func = target.rpartition(":")
    if not where or not func.isidentifier():
        raise v.fail(name, target, "PATH.py:FUNC or module:FUNC")
    try:
        module = load_module(where, name)
    except GradlabError as exc:
        if getattr(exc, "no_module", False) and os.path.isfile(f"{where}.py"):
            raise GradlabError(f"{name}: no module named {where!r}, but there is a file {where}.py here: "
                               f"name the file, {where}.py:{func}") from None
        raise
    fn = getattr(module, func, None)
    if fn is None:
        raise GradlabError(f"{name} names no function {func!r} in {where}; "
                           f"got {name}={(target if shown is None else shown)!r}")
    if not callable(fn):
        raise GradlabError(f"{name} must name a function; {func!r} in {where} is {with_article(type(fn).__name__)}")
    return fn


def load_target(target: str, name: str = "target"):
    """Load what a call template may start from: ``PATH.py:NAME`` or ``module:NAME`` (a
    function or a class), or ``PATH.py`` or ``module`` alone (the module itself).

    Raises as :func:`load_function` does.
    """
    if isinstance(target, str) and target and ":" not in target:
        return load_module(target, name)
    return load_function(target, name)


_MODULE_CACHE: dict = {}


def _import_failed(name: str, where: str, exc: BaseException, user_file: str | None) -> UserCodeError:
    if isinstance(exc, SyntaxError):
        line = f", line {exc.lineno}" if exc.lineno else ""
        text = f": {exc.text.strip()}" if exc.text and exc.text.strip() else ""
        file = short_path(exc.filename) if exc.filename else where
        return UserCodeError(f"{name}: syntax error in {file}{line}: {exc.msg}{text}")
    return UserCodeError(f"{name}: importing {where} raised {one_line(exc)}{raised_where(exc, user_file)}")


def names_a_file(where: str) -> bool:
    """Whether the part of a target before the colon is a file path (else a module name)."""
    return where.endswith(".py") or os.sep in where or "/" in where


def source_file(where: str, name: str = "target") -> str:
    """The absolute path of the Python file ``where``, refused (a GradlabError naming ``name``
    and the reason) unless it is a readable ``.py`` file."""
    path = _files.absolute(where, name)
    if not os.path.lexists(path):
        raise GradlabError(f"{name}: file not found: {where}")
    _files.file_path(name, path)  # a folder, a device: refused with the reason
    if not where.endswith(".py"):
        # Only Python source is run: never a data or model file named by mistake.
        raise GradlabError(f"{name} must name a Python file (.py) and a function; got {where!r}")
    _files.read_bytes(name, path)  # unreadable: a gradlab error, not an import error
    return path


@contextlib.contextmanager
def _no_bytecode():
    """Python's imports write no ``__pycache__`` while the user's module loads: checking a
    folder of submissions leaves the folder as it was (compiled files still load)."""
    before = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        yield
    finally:
        sys.dont_write_bytecode = before


def load_module(where: str, name: str = "target"):
    """Import ``PATH.py`` or an importable module (the part of a target before the colon);
    errors as for :func:`load_function`. A file is imported once per process."""
    if names_a_file(where):
        path = source_file(where, name)
        if path in _MODULE_CACHE:
            return _MODULE_CACHE[path]
        # As `python PATH.py` would: the file's folder on the path, so its own imports work.
        folder = os.path.dirname(path)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        mod_name = "_gradlab_user_" + str(abs(hash(path)))
        spec = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(spec)
        try:
            with user_code(), _no_bytecode():
                spec.loader.exec_module(module)
        except KeyboardInterrupt:  # the user's Ctrl-C, not the code's failure
            raise
        except BaseException as exc:  # the user's code: report it, never a traceback
            raise _import_failed(name, where, exc, path) from exc
        _MODULE_CACHE[path] = module
        return module
    try:
        with user_code(), _no_bytecode():
            return importlib.import_module(where)
    except ModuleNotFoundError as exc:
        if exc.name and where.startswith(exc.name):
            missing = GradlabError(f"{name}: no module named {where!r} (nor a file {where!r})")
            missing.no_module = True
            raise missing from None
        raise _import_failed(name, where, exc, None) from exc
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        raise _import_failed(name, where, exc, None) from exc


# --------------------------------------------------------------------------------------
# Calling
# --------------------------------------------------------------------------------------


def function_kind(fn) -> str | None:
    """``"a generator function"`` or ``"a coroutine function"`` (a body that runs only when
    iterated or awaited), else None. A stand-in for a function that lives in another
    process answers for it with its own ``function_kind`` attribute."""
    if hasattr(fn, "function_kind"):
        return fn.function_kind
    try:
        target = inspect.unwrap(fn)
    except ValueError:  # a cycle of __wrapped__
        target = fn
    if inspect.iscoroutinefunction(target):
        return "a coroutine function"
    if inspect.isgeneratorfunction(target) or inspect.isasyncgenfunction(target):
        return "a generator function"
    return None


def check_signature(fn, n_args: int, name: str, shape: str) -> None:
    """Refuse a function that cannot take ``n_args`` positional arguments, or that returns
    a generator or coroutine (whose body would never run) instead of a value.

    The refusal is a :class:`UserCodeError`: it is about the user's code, not about an
    option of gradlab's (a batch of checks reports it as that target's error)."""
    kind = function_kind(fn)
    if kind is not None:
        raise UserCodeError(f"{name} must be a function that returns its result; got {fn_name(fn)}, "
                            f"{kind} (its body runs only when iterated or awaited)")
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # builtins and C functions: let the call decide
    try:
        sig.bind(*range(n_args))
    except TypeError:
        raise UserCodeError(
            f"{name} must take {n_args} positional arguments {shape}; got "
            f"{getattr(fn, '__name__', fn)!s}{sig}"
        ) from None


def guarded(fn, what: str, name: str, n_args: int, shape: str):
    """The user's callable as ``(call, label)``: its signature checked now; each call runs
    under :func:`user_code`, and an exception (or ``sys.exit``) inside it becomes a
    UserCodeError naming ``what``, the function, the exception and where it was raised,
    the original chained (``__cause__``) so its traceback is kept."""
    label = getattr(fn, "__name__", None) or type(fn).__name__
    check_signature(fn, n_args, name, shape)
    code = getattr(fn, "__code__", None)
    file = code.co_filename if code is not None else None

    @functools.wraps(fn)
    def call(*args):
        try:
            with user_code():
                return fn(*args)
        except UserCodeStopped:  # the code's process is gone: nothing raised to describe
            raise
        except (Exception, SystemExit) as exc:  # SystemExit: sys.exit() in the user's code
            raise UserCodeError(f"{what} {label!r} raised {one_line(exc)}{raised_where(exc, file)}") from exc

    return call, label
