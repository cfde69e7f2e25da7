"""The user's code in a process of its own: a hang, a crash or a print cannot take gradlab with it.

A :class:`Worker` is one child process -- a fresh interpreter (``python -P -c``), never a
fork of gradlab's, which may hold jax's threads -- that imports the user's module and calls
its functions when asked. :meth:`Worker.load` returns a :class:`RemoteFunction`, a stand-in
that behaves like the function:

* it returns what the function returned (pickled back; an array the function returns
  unchanged from its arguments comes back as the caller's own array);
* it raises :class:`~gradlab._usercode.RaisedInWorker` for what the function raised, with
  the summary and the user's file and line found in the child, where the traceback is --
  so :func:`~gradlab._usercode.one_line` and :func:`~gradlab._usercode.raised_where` give
  the words they give in gradlab's own process;
* whatever the function wrote into its copies of the caller's arrays is copied back into
  the caller's arrays, so a checker that compares its arrays before and after a call sees
  the writes it would see in its own process (an array and the views of it passed with it
  arrive in the child as one array and views of it, so the aliasing is kept too).

Each call is one round trip over a pipe. The child's standard output and error (Python's
and C's: the file descriptors) go into one pipe that gradlab reads while it waits, and
keeps (:attr:`Worker.output`). The time the user's code runs -- its import and every call,
not the child's start nor gradlab's own work between calls -- is summed against one limit;
past it, when the child's resident memory passes the memory gradlab allows it (read from
``/proc`` while gradlab waits; the child is then killed before the system runs out), or when
the child dies (a segfault, an abort, the out-of-memory killer), the stand-in raises
:class:`~gradlab._errors.UserCodeStopped`, and so does every later call.

Not a sandbox: the child runs as the same user as gradlab, with the same files and rights,
and its replies (pickles) are trusted as the user's code is. Code that is hostile, not just
broken, belongs under another user or in a container.
"""

from __future__ import annotations

import faulthandler
import inspect
import io
import os
import pickle
import re
import select
import selectors
import signal
import subprocess
import sys
import threading
import time
import traceback
import weakref


try:
    import fcntl
except ImportError:  # not a POSIX system (where a worker cannot start: see Worker._start)
    fcntl = None

from gradlab import _resources, _usercode, _wire
from gradlab import _validate as v
from gradlab._errors import GradlabError, NotSendable, UserCodeError, UserCodeStopped
from gradlab._wire import StandIn

__all__ = ["Worker", "RemoteFunction", "InWorker", "StandIn", "check_timeout", "DEFAULT_TIMEOUT", "START_LIMIT", "OUTPUT_KEPT",
           "serve"]

#: Seconds the user's code may run in all for one target (its import and every call a check
#: makes), by default. A check makes a few dozen calls; at gradlab's own case each takes
#: milliseconds, and a per-example Python loop over 5,000 examples well under a second, so
#: only a loop that never ends (or code far too slow to check) comes near; and a batch of
#: submissions that all hang still ends, after a minute each.
DEFAULT_TIMEOUT = 60.0
#: Seconds the child may take to start (an interpreter, numpy and gradlab: about half a
#: second on a quiet machine); not counted against the user's code. Far above it only on a
#: machine so loaded that nothing would finish.
START_LIMIT = 120.0
#: Bytes of the child's output kept: the first OUTPUT_KEPT - OUTPUT_TAIL and the last
#: OUTPUT_TAIL (where a crash's traceback is), the rest counted; code that prints in a loop
#: that never ends would otherwise fill memory in seconds.
OUTPUT_KEPT = 64 * 1024
OUTPUT_TAIL = 16 * 1024
#: Seconds to wait, once the child has ended, for the last of its output; a process the
#: user's code started may hold the pipe open for ever.
_DRAIN_GRACE = 1.0
#: Seconds a closing child gets to end by itself before it is killed.
_CLOSE_GRACE = 2.0
#: How often the child looks whether gradlab is still there (it ends itself if not).
_WATCH_PERIOD = 0.5
#: Seconds between two readings of the child's resident memory while gradlab waits on it.
#: numpy fills fresh memory at several GB/s, so a period of 50 ms lets a runaway allocation
#: pass the limit by a few hundred MB at most -- inside the 20 % that MEMORY_FRACTION keeps
#: back; one reading (a small file in /proc) costs some 20 microseconds.
MEMORY_PERIOD = 0.05
#: Run by the child. -P: the working folder is not put on sys.path, so a student's file
#: named numpy.py or gradlab.py cannot replace the libraries the child starts with.
_BOOT = "import sys; from gradlab._isolation import serve; serve(int(sys.argv[1]), int(sys.argv[2]))"
#: The real os._exit, taken before any user code runs (user_code() replaces it while it does).
_REAL_EXIT = os._exit
#: A frame in the traceback faulthandler writes when the child crashes.
_FAULT_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+) in (?P<func>\S+)', re.M)
_OWN = os.path.dirname(os.path.abspath(__file__))


class _Late(Exception):
    """The deadline passed while waiting on the child."""


class _Gone(Exception):
    """The child's end of a pipe closed: it has died."""


class _Heavy(Exception):
    """The child's resident memory passed the limit."""


class WorkerTraceback(Exception):
    """The traceback of the user's exception, formatted in the child (chained as the cause)."""


# --------------------------------------------------------------------------------------
# The parent's side
# --------------------------------------------------------------------------------------


class _Output:
    """The child's output: the first bytes and the last, the middle counted."""

    def __init__(self):
        self.head, self.tail, self.dropped = bytearray(), bytearray(), 0

    def add(self, data: bytes) -> None:
        room = OUTPUT_KEPT - OUTPUT_TAIL - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > OUTPUT_TAIL:
                self.dropped += len(self.tail) - OUTPUT_TAIL
                del self.tail[:len(self.tail) - OUTPUT_TAIL]

    def text(self) -> str:
        gap = f"\n[... {self.dropped} bytes of output not kept ...]\n" if self.dropped else ""
        return (bytes(self.head).decode("utf-8", "replace") + gap + bytes(self.tail).decode("utf-8", "replace"))


def _finish(proc, fds) -> None:
    """Kill the child (if alive) and close the pipes; safe to call twice (weakref.finalize)."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
    fds.clear()


class Worker:
    """One child process that runs the user's code; its functions are called through stand-ins.

    Parameters
    ----------
    timeout : float, default :data:`DEFAULT_TIMEOUT`
        Seconds the user's code may run in all (import and calls) in this worker.
    memory : int, optional
        Bytes of resident memory the child may hold; past them it is killed and the call
        is reported as crashed. Default: the memory gradlab allows itself when the child
        starts (``GRADLAB_MEMORY_LIMIT``, or 80 % of what the machine has available; see
        :func:`gradlab._resources.available_memory`). Read where ``/proc`` exists (Linux).

    Use it as a context manager (the child is ended on leaving) or call :meth:`close`. The
    child starts on the first :meth:`load`.

    Examples
    --------
    >>> with Worker(timeout=10) as w:                       # doctest: +SKIP
    ...     grad = w.load("student.py:nnGradient")
    ...     g = grad(params, 3, 5, 3, X, y, 1.0)          # as if called here
    ...     print(w.output)                               # what the code printed
    """

    def __init__(self, timeout: float = DEFAULT_TIMEOUT, memory: int | None = None):
        self.limit = check_timeout(timeout)
        self.memory = None if memory is None else v.integer("memory", memory, minimum=1)
        self._memory_why = "the limit given"
        self.used = 0.0
        self.calls = 0
        self.stopped: UserCodeStopped | None = None
        self._proc = None
        self._fds: list[int] = []
        self._output = _Output()
        self._selector = None
        self._finalizer = None
        self._files: set[str] = set()  # the user's files, where a crash is placed when it can be

    # -- life -----------------------------------------------------------------------
    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self) -> None:
        if os.name != "posix":
            raise GradlabError("running the user's code in a process of its own needs a POSIX system (Linux, "
                               "macOS); here, check a callable in process (gradlab.check(fn), isolate=False)")
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        out_r, out_w = os.pipe()
        here = os.path.dirname(_OWN)  # the folder gradlab itself is imported from
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8:backslashreplace",
                   PYTHONPATH=os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")])))
        env.pop("PYTHONFAULTHANDLER", None)  # the child enables it, for its main thread only
        try:
            proc = subprocess.Popen([sys.executable, "-P", "-c", _BOOT, str(req_r), str(rep_w)],
                                    stdin=subprocess.DEVNULL, stdout=out_w, stderr=out_w,
                                    pass_fds=(req_r, rep_w), env=env)
        except OSError as exc:
            for fd in (req_r, req_w, rep_r, rep_w, out_r, out_w):
                os.close(fd)
            raise GradlabError(f"could not start a process for the user's code ({sys.executable}): "
                               f"{exc.strerror or exc}") from None
        for fd in (req_r, rep_w, out_w):
            os.close(fd)
        for fd in (req_w, rep_r, out_r):
            os.set_blocking(fd, False)
        for fd in (req_w, rep_r):
            _widen(fd)
        self._proc, self._fds = proc, [req_w, rep_r, out_r]
        if self.memory is None:
            self.memory, self._memory_why = _resources.available_memory()
        self._req, self._rep, self._out = req_w, rep_r, out_r
        self._selector = selectors.DefaultSelector()
        self._selector.register(out_r, selectors.EVENT_READ)
        self._finalizer = weakref.finalize(self, _finish, proc, self._fds)
        try:
            reply = self._exchange(("init", list(sys.path), list(sys.argv)), START_LIMIT, None)
        except (_Late, _Gone):
            self._end()
            self._proc = None  # a later request tries to start again
            raise GradlabError("the process for the user's code did not start"
                               + (f": {_last_line(self.output)}" if self.output.strip() else "")) from None
        if reply != ("ready",):  # pragma: no cover - a protocol bug
            raise GradlabError(f"the process for the user's code answered {reply!r} at its start")

    def close(self) -> None:
        """End the child: it exits when its request pipe closes; killed if it does not."""
        if self._finalizer is None or not self._finalizer.alive:
            return
        try:
            os.close(self._req)
            self._fds.remove(self._req)
        except (OSError, ValueError):
            pass
        try:
            self._proc.wait(_CLOSE_GRACE)
        except subprocess.TimeoutExpired:
            pass
        self._end()

    def _end(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._drain(time.monotonic() + _DRAIN_GRACE)
        self._selector.close()
        self._finalizer()

    @property
    def output(self) -> str:
        """What the user's code printed so far (stdout and stderr, in the order written)."""
        if self._proc is not None and self._out in self._fds:
            self._drain(None)
        return self._output.text()

    # -- requests -------------------------------------------------------------------
    def load(self, target: str, name: str = "target") -> "RemoteFunction":
        """The function ``PATH.py:FUNC`` or ``module:FUNC``, imported in the child.

        Raises as :func:`gradlab._usercode.load_function` does (GradlabError for a bad
        target, UserCodeError when the import raises), and UserCodeStopped when the import
        hangs past the time limit or crashes the child.
        """
        if not isinstance(target, str):
            raise v.fail(name, target, "PATH.py:FUNC or module:FUNC")
        where = target.rpartition(":")[0]
        if where and _usercode.names_a_file(where):
            # Missing, a folder, not .py, unreadable: refused here, as in gradlab's own process.
            _usercode.source_file(where, name)
        return self._new(("load", target, name), f"importing {target.rpartition(':')[0] or target}")

    def adopt(self, fn, name: str = "grad_fn") -> "RemoteFunction":
        """``fn`` itself, imported in the child from its module by name (as pickle does)."""
        label = _usercode.fn_name(fn)
        if getattr(fn, "__module__", None) == "__main__":
            raise GradlabError(f"{name}={label} is defined in the script being run (__main__), which another "
                               "process cannot import; to isolate it, move it into a module (or pass the "
                               "target 'FILE.py:FUNC'), or pass isolate=False")
        try:
            data = pickle.dumps(fn, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # noqa: BLE001 - lambdas, local functions, bound objects
            raise GradlabError(f"{name}={label} cannot be sent to another process ({_usercode.one_line(exc)}); "
                               "to isolate it, pass a function defined at the top level of a module or the "
                               "target 'FILE.py:FUNC', or pass isolate=False") from None
        return self._new(("adopt", data, name), f"importing {getattr(fn, '__module__', label)}")

    def make(self, factory: str, *args, attributes=(), label: str = "call", **kwargs) -> "RemoteFunction":
        """A callable built in the child: ``factory(*args, **kwargs)``, where ``factory`` is a
        target (``module:NAME`` or ``PATH.py:NAME``) and an :class:`InWorker` among ``args``
        is the target it names, loaded there. The stand-in carries the ``attributes`` named
        (their values, as the child sees them); ``label`` names it in messages.

        For what must run where the user's module is -- a call template evaluated over the
        module's globals: ``w.make("gradlab.check.conventions:CallTemplate", source,
        InWorker("nn.py"), attributes=("names",))``.
        """
        for a in attributes:
            if not isinstance(a, str) or not a.isidentifier():
                raise v.fail("attributes", attributes, "attribute names")
        return self._new(("make", factory, args, kwargs, tuple(attributes), label), label)

    def _new(self, message, what: str) -> "RemoteFunction":
        reply = self._request(message, what)
        if reply[0] == "refused":
            _, kind, text = reply
            raise (UserCodeError if kind == "user" else GradlabError)(text)
        _, handle, info = reply
        if info["file"]:
            self._files.add(os.path.abspath(info["file"]))
        return RemoteFunction(self, handle, info)

    def call(self, handle: int, label: str, args: tuple, kwargs: dict):
        """Call function ``handle`` in the child: the stand-ins' ``__call__``."""
        buffer = io.BytesIO()
        pickler = _wire.FindArrays(buffer)
        try:
            pickler.dump((args, kwargs))
        except Exception as exc:  # noqa: BLE001
            raise NotSendable(f"the arguments for {label} cannot be sent to the process that runs it "
                               f"({_usercode.one_line(exc)})") from None
        refs, roots, writeable = _wire.transport(pickler.found)
        self.calls += 1
        reply = self._request(("call", handle, refs, roots, writeable, buffer.getvalue()), label)
        _wire.copy_back(roots, reply[-1])
        if reply[0] == "raised":
            _, summary, where, text, _ = reply
            raise _usercode.RaisedInWorker(label, summary, where, text) from WorkerTraceback(text)
        return _wire.PutArrays(io.BytesIO(reply[1]), pickler.found).load()

    def _request(self, message, what: str):
        if self.stopped is not None:
            raise self.stopped
        if self._proc is None:
            self._start()
        start = time.monotonic()
        try:
            return self._exchange(message, self.limit - self.used, what)
        except _Heavy:
            self._stop("crashed", f"{what} was stopped: its process grew past the "
                                  f"{_resources.format_bytes(self.memory)} of memory gradlab lets the user's code "
                                  f"have ({self._memory_why}) -- an array far larger than meant, or one that grows "
                                  "without end")
        except _Late:
            self.used = self.limit
            self._stop("timeout", f"{what} was stopped: the user's code ran past its time limit of "
                                  f"{self.limit:g} s (timeout) -- a loop that never ends, a wait for input, "
                                  "or code too slow for the limit")
        except _Gone:
            try:
                self._proc.wait(_CLOSE_GRACE)
                death = self._death()
            except subprocess.TimeoutExpired:  # alive, but its end of the pipe closed (by the user's code)
                death = "its process closed its pipe to gradlab and was stopped"
            self._stop("crashed", f"{what} crashed: {death}")
        finally:
            if self.stopped is None:
                self.used += time.monotonic() - start

    def _stop(self, status: str, message: str):
        self._end()
        if status == "crashed":
            message += _fault_place(self._output.text(), self._files)
        self.stopped = UserCodeStopped(message, status)
        raise self.stopped

    def _death(self) -> str:
        code = self._proc.returncode
        if code is not None and code < 0:
            try:
                sig = signal.Signals(-code)
            except ValueError:
                return f"its process was killed by signal {-code}"
            hint = ("; the system's out-of-memory killer sends it when memory runs out" if sig == signal.SIGKILL
                    else "")
            return f"its process was killed by {sig.name} ({signal.strsignal(sig) or sig.name}){hint}"
        return f"its process exited with status {code} before it answered"

    # -- the pipes ------------------------------------------------------------------
    def _exchange(self, message, seconds: float, what):
        deadline = time.monotonic() + max(seconds, 0.0)
        for piece in _wire.encode(message):
            self._send(piece, deadline)
        return _wire.decode(lambda n: self._receive(n, deadline))

    def _wait(self, fd: int, event, deadline) -> None:
        """Until ``fd`` is ready (reading the child's output meanwhile) or the deadline."""
        key = self._selector.register(fd, event)
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _Late
                for ready, _ in self._selector.select(min(left, MEMORY_PERIOD)):
                    if ready.fd == self._out:
                        self._drain(None)
                    elif ready.fd == fd:
                        return
                if self.memory is not None and (_resources.resident_memory(self._proc.pid) or 0) > self.memory:
                    raise _Heavy  # where there is no /proc (macOS), the out-of-memory killer is the limit
        finally:
            self._selector.unregister(key.fd)

    def _send(self, data, deadline) -> None:
        view = memoryview(data).cast("B")
        while view:
            try:
                view = view[os.write(self._req, view[:_wire.CHUNK]):]
            except BlockingIOError:
                self._wait(self._req, selectors.EVENT_WRITE, deadline)
            except BrokenPipeError:
                raise _Gone from None

    def _receive(self, n: int, deadline) -> bytearray:
        buf = bytearray(n)
        view, got = memoryview(buf), 0
        while got < n:
            try:
                k = os.readv(self._rep, [view[got:got + _wire.CHUNK]])
            except BlockingIOError:
                self._wait(self._rep, selectors.EVENT_READ, deadline)
                continue
            if k == 0:
                raise _Gone
            got += k
        return buf

    def _drain(self, deadline) -> None:
        """Read the child's output: what is there now (deadline None), or until it ends."""
        if self._out not in self._fds:
            return
        while True:
            try:
                data = os.read(self._out, _wire.CHUNK)
            except BlockingIOError:
                left = None if deadline is None else deadline - time.monotonic()
                if left is None or left <= 0:
                    return
                select.select([self._out], [], [], left)
                continue
            if not data:  # every writer has closed it: the child and all it started have ended
                self._selector.unregister(self._out)
                os.close(self._out)
                self._fds.remove(self._out)
                return
            self._output.add(data)


def _widen(fd: int) -> None:
    """A pipe of :data:`_wire.CHUNK` bytes where the system allows (Linux): a 16 MB array then
    crosses in 16 writes, not 256 of the default 64 KiB, each a wake-up of the other side."""
    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _wire.CHUNK)
    except (AttributeError, OSError):  # not Linux (no F_SETPIPE_SZ), or above the system's pipe-max-size
        pass


def check_timeout(timeout) -> float:
    """``timeout`` as seconds: a finite number > 0 (else the standard error naming it)."""
    value = v.real("timeout", timeout, minimum=0.0)
    if value <= 0:
        raise v.fail("timeout", timeout, "a number of seconds > 0")
    return value


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _fault_place(output: str, files) -> str:
    """`` (at FILE, line N, in FUNC)``: where the child crashed, from the traceback faulthandler
    wrote (most recent call first) -- the innermost frame in the user's files when there is
    one (the crash itself may be inside ctypes or numpy), else the innermost outside gradlab."""
    frames = [m for m in _FAULT_FRAME.finditer(output)
              if not m["file"].startswith("<") and not os.path.abspath(m["file"]).startswith(_OWN + os.sep)]
    mine = [m for m in frames if os.path.abspath(m["file"]) in files]
    if not frames:
        return ""
    m = (mine or frames)[0]
    return f" (at {_usercode.short_path(m['file'])}, line {m['line']}, in {m['func']})"


class _Default:
    """A parameter's default in a stand-in's signature: the child's repr of it."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


class InWorker:
    """Among :meth:`Worker.make`'s arguments: the target ``PATH.py``, ``module`` (the module
    itself) or ``PATH.py:NAME``, ``module:NAME``, loaded in the child."""

    def __init__(self, target: str):
        if not isinstance(target, str) or not target:
            raise v.fail("target", target, "PATH.py, a module, or either with :NAME")
        self.target = target


class RemoteFunction:
    """A stand-in for a function that lives in a :class:`Worker`'s child process.

    Called, it calls the function there (see :mod:`gradlab._isolation`). It has the
    function's ``__name__``, ``__qualname__`` and signature, and says with
    ``function_kind`` whether the function is a generator or coroutine function.
    """

    def __init__(self, worker: Worker, handle: int, info: dict):
        self.worker, self.handle = worker, handle
        self.__name__, self.__qualname__ = info["name"], info["qualname"]
        self.__module__ = info.get("module") or __name__
        self.function_kind = info["kind"]
        self.user_file = info["file"]
        #: Whether it stands in for a class (check then asks for a call template).
        self.stands_in_for_class = bool(info.get("is_class"))
        sig = _signature(info["parameters"])
        if sig is not None:
            self.__signature__ = sig
        for key, value in info.get("attributes", {}).items():
            setattr(self, key, value)

    def __call__(self, *args, **kwargs):
        return self.worker.call(self.handle, self.__name__, args, kwargs)

    def __repr__(self) -> str:
        return f"<{self.__qualname__} in a separate process>"


def _signature(parameters):
    if parameters is None:
        return None
    try:
        return inspect.Signature([
            inspect.Parameter(name, getattr(inspect.Parameter, kind),
                              default=_Default(default) if default is not None else inspect.Parameter.empty)
            for name, kind, default in parameters])
    except (ValueError, TypeError, AttributeError):
        return None


# --------------------------------------------------------------------------------------
# The child's side
# --------------------------------------------------------------------------------------


def _describe(fn) -> dict:
    label = getattr(fn, "__name__", None) or type(fn).__name__
    try:
        sig = inspect.signature(fn)
        parameters = [(p.name, p.kind.name, None if p.default is p.empty else repr(p.default)[:80])
                      for p in sig.parameters.values()]
    except (TypeError, ValueError):
        parameters = None
    return {"name": label, "qualname": _usercode.fn_name(fn), "kind": _usercode.function_kind(fn),
            "file": _usercode.code_file(fn), "parameters": parameters, "module": getattr(fn, "__module__", None),
            "is_class": inspect.isclass(fn)}


def _in_worker(value, name):
    if not isinstance(value, InWorker):
        return value
    if ":" in value.target:
        return _usercode.load_function(value.target, name)
    return _usercode.load_module(value.target, name)


def _make(factory, args, kwargs, attributes, name):
    build = _usercode.load_function(factory, name)
    fn = build(*(_in_worker(a, name) for a in args), **{k: _in_worker(a, name) for k, a in kwargs.items()})
    if not callable(fn):
        raise GradlabError(f"{name}: {factory} made a {type(fn).__name__}, which cannot be called")
    info = _describe(fn)
    info["attributes"] = {a: getattr(fn, a) for a in attributes}
    return fn, info


def _handle(message, functions):
    kind = message[0]
    if kind == "init":
        sys.path[:] = message[1]
        sys.argv[:] = message[2]
        return ("ready",)
    if kind in ("load", "adopt", "make"):
        name = message[-1]
        try:
            with _usercode.user_code():
                if kind == "load":
                    fn = _usercode.load_function(message[1], name)
                    info = _describe(fn)
                elif kind == "adopt":
                    fn = pickle.loads(message[1])
                    info = _describe(fn)
                else:
                    fn, info = _make(*message[1:])
        except UserCodeError as exc:
            return ("refused", "user", str(exc))
        except GradlabError as exc:
            return ("refused", "gradlab", str(exc))
        except BaseException as exc:  # noqa: BLE001 - the user's module, imported by pickle
            return ("refused", "user", f"{name}: importing it raised {_usercode.one_line(exc)}"
                                       f"{_usercode.raised_where(exc, None)}")
        functions.append(fn)
        return ("loaded", len(functions) - 1, info)
    if kind == "call":
        _, handle, refs, roots, writeable, payload = message
        fn = functions[handle]
        arrays, roots = _wire.rebuild(refs, roots, writeable)
        args, kwargs = _wire.PutArrays(io.BytesIO(payload), arrays).load()
        before = [r.copy(order="K") for r in roots]
        try:
            with _usercode.user_code():
                result = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - the user's code: reported, whatever it raised
            text = "".join(traceback.format_exception(exc))
            return ("raised", _usercode.one_line(exc), _usercode.raised_where(exc, _usercode.code_file(fn)), text,
                    _wire.changed(roots, before))
        changed = _wire.changed(roots, before)
        buffer = io.BytesIO()
        try:
            _wire.KnownArrays(buffer, arrays).dump(result)
        except Exception:  # noqa: BLE001 - a part that cannot be pickled: sent as a stand-in
            buffer = io.BytesIO()
            _wire.KnownArrays(buffer, arrays).dump(_wire.sendable(result))
        return ("returned", buffer.getvalue(), changed)
    raise ValueError(f"unknown request {kind!r}")  # pragma: no cover - a protocol bug


def _watch_parent() -> None:
    """End the child when gradlab has gone (killed), even while the user's code loops."""
    parent = os.getppid()

    def watch():
        while True:
            time.sleep(_WATCH_PERIOD)
            if os.getppid() != parent:
                _REAL_EXIT(1)

    threading.Thread(target=watch, name="gradlab-watch", daemon=True).start()


def serve(rfd: int, wfd: int) -> None:
    """The child's loop: read a request, answer it, until the request pipe closes."""
    # Ctrl-C reaches the whole process group: gradlab handles it and ends this process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    faulthandler.enable(all_threads=False)  # a crash writes where it happened into the output
    _watch_parent()
    functions: list = []
    read = _wire.blocking_reader(rfd)
    while True:
        try:
            message = _wire.decode(read)
        except EOFError:
            _REAL_EXIT(0)  # at once: the user's atexit handlers would print to no one
        for piece in _wire.encode(_handle(message, functions)):
            _wire.write_all(wfd, piece)
