"""The user's code in a process of its own (gradlab._isolation): the stand-in behaves like the
function -- results, exceptions with the user's line, writes into the arguments -- while a
hang, a crash or a print stays in the child. Every child here runs a few lines of numpy;
the hangs are stopped after one second."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import gradlab
from gradlab._isolation import OUTPUT_KEPT, Worker
from gradlab.check import UserCodeError, UserCodeStopped, load_function
from gradlab.check.calls import Caller

# slow: every test runs the user's code in a child process.
pytestmark = pytest.mark.slow

TESTS = Path(__file__).resolve().parent
#: Hangs in these tests are stopped after this many seconds of the user's code.
HANG = 0.5

USER = '''
import os, sys
import numpy as np
sys.path.insert(0, {tests!r})
from broken import seed_cost, seed_gradient

print("imported user")

def double(x):
    return 2 * x

def boom(problem, params):
    return helper(params)

def helper(params):
    return {{}}["Theta3"]                         # the innermost line of the user's code

def writes(params, X):
    params[0] = 7.0
    X[1, 1] = -1.0
    return params                                 # the caller's own array comes back

def through_view(theta, t1):
    t1[0] = 42.0
    return theta[2]                               # the write through the view, seen in theta

def raises_after_writing(params):
    params[:] = 0.0
    raise ValueError("half done")

def chatty(x):
    print("J =", x)
    sys.stderr.write("warning: slow\\n")
    os.write(1, b"from C\\n")
    return x

def read_only(X):
    X[0, 0] = 1.0

COUNT = [0]
def drifting(problem, params):
    from gradlab.sources import gradient
    COUNT[0] += 1
    return gradient(problem, params, "backprop") * (1.0 + 1e-3 * COUNT[0])

def generator_fn(x):
    yield x

def returns_generator(problem, params):
    return (g for g in params)

def interrupts(x):
    raise KeyboardInterrupt

def two(a, b):
    return a + b

class Scaled:
    """A callable built from a function (or a module) of the user's and a number."""
    names = ("x",)

    def __init__(self, fn, k):
        self.fn, self.k = fn, k

    def __call__(self, x):
        return (self.fn(x) if callable(self.fn) else self.fn.double(x)) * self.k  # a module: its double

nnGradient = seed_gradient(copy=False)            # the seed's in-place bias-zeroing bug
goodGradient = seed_gradient(copy=True)
nnCostFunction = seed_cost
'''


#: The line of user.py where boom's exception is raised.
RAISES_AT = next(n for n, line in enumerate(USER.splitlines(), start=1) if '["Theta3"]' in line)


@pytest.fixture(scope="module")
def user(tmp_path_factory):
    path = tmp_path_factory.mktemp("user") / "user.py"
    path.write_text(USER.format(tests=str(TESTS)))
    return path


@pytest.fixture(scope="module")
def worker(user):
    with Worker(timeout=30) as w:
        yield w


def _fn(worker, user, name):
    return worker.load(f"{user}:{name}")


def _alone(tmp_path, body: str, name: str = "f", timeout: float = HANG) -> tuple[Worker, object]:
    """A worker of its own, for code that hangs or crashes it (by default stopped after HANG s)."""
    (tmp_path / "alone.py").write_text(textwrap.dedent(body))
    w = Worker(timeout=timeout)
    return w, w.load(f"{tmp_path / 'alone.py'}:{name}")


# ------------------------------------------------------------------ the stand-in is the function


def test_a_stand_in_returns_the_result_and_has_the_functions_name_and_signature(worker, user):
    import inspect

    fn = _fn(worker, user, "double")
    assert fn.__name__ == "double" and str(inspect.signature(fn)) == "(x)"
    np.testing.assert_array_equal(fn(np.arange(3.0)), [0.0, 2.0, 4.0])
    assert fn(21) == 42


def test_an_exception_names_the_innermost_line_of_the_users_code_as_in_process(worker, user):
    fn = _fn(worker, user, "boom")
    with pytest.raises(UserCodeError) as isolated:
        Caller(fn, "gradlab", gradlab.Network((3, 5, 3)))(gradlab.debug_problem(), np.zeros(38))
    with pytest.raises(UserCodeError) as here:
        Caller(load_function(f"{user}:boom"), "gradlab", gradlab.Network((3, 5, 3)))(gradlab.debug_problem(),
                                                                                    np.zeros(38))
    assert "grad_fn boom raised KeyError: 'Theta3' (" in str(isolated.value)
    assert f"user.py, line {RAISES_AT}, in helper)" in str(isolated.value)
    assert str(isolated.value) == str(here.value)


def test_writes_into_the_arguments_are_copied_back_and_an_argument_returned_is_the_callers(worker, user):
    params, X = np.arange(4.0), np.ones((2, 2))
    out = _fn(worker, user, "writes")(params, X)
    assert out is params and params[0] == 7.0 and X[1, 1] == -1.0 and X.sum() == 2.0


def test_an_array_and_a_view_of_it_stay_one_array_in_the_child(worker, user):
    theta = np.zeros(6)
    assert _fn(worker, user, "through_view")(theta, theta[2:4]) == 42.0
    assert theta.tolist() == [0, 0, 42, 0, 0, 0]


def test_writes_before_an_exception_are_copied_back_too(worker, user):
    params = np.ones(3)
    with pytest.raises(UserCodeError, match="raised ValueError: half done"):
        _fn(worker, user, "raises_after_writing")(params)
    assert params.tolist() == [0.0, 0.0, 0.0]


def test_a_read_only_array_stays_read_only_in_the_child(worker, user):
    X = np.zeros((2, 2))
    X.flags.writeable = False
    with pytest.raises(UserCodeError, match="ValueError: assignment destination is read-only"):
        _fn(worker, user, "read_only")(X)


def test_wrong_arity_and_generator_functions_are_refused_as_in_process(worker, user):
    from gradlab._usercode import check_signature

    for name, pattern in (("two", r"must take 7 positional arguments"), ("generator_fn", r"a generator function")):
        with pytest.raises(UserCodeError, match=pattern):
            check_signature(_fn(worker, user, name), 7, "grad_fn", "(...)")


def test_a_result_that_cannot_be_pickled_arrives_as_a_stand_in_of_its_type(user):
    report = gradlab.check(f"{user}:returns_generator", against=("backprop",))
    f = next(f for f in report.findings if f.kind == "bad_output")
    assert f.cause == "type generator" and "returned generator" in f.sentence


def test_a_keyboard_interrupt_raised_by_the_code_is_its_error_not_a_ctrl_c(worker, user):
    with pytest.raises(UserCodeError, match="interrupts raised KeyboardInterrupt"):
        _fn(worker, user, "interrupts")(1)


# ------------------------------------------------------------------ the checker across the boundary


def test_the_seeds_in_place_bias_zeroing_is_found_when_isolated(user):
    report = gradlab.check(f"{user}:nnGradient", signature="seed")
    assert not report.ok
    found = {(f.kind, f.layer, f.cause) for f in report.findings}
    assert found == {("input_mutation", 1, "bias column zeroed in place"),
                     ("input_mutation", 2, "bias column zeroed in place")}
    assert report.comparisons["yours vs jax"]["ok"]  # the values are right; the writes are the bug
    assert report.output == "imported user\n"


def test_a_correct_seed_gradient_passes_isolated_and_the_report_has_its_output(user):
    report = gradlab.check(f"{user}:goodGradient", signature="seed", cost_fn="nnCostFunction")
    assert report.ok and report.to_dict()["output"] == "imported user\n"
    heading = f"output of {report.info['function']}'s code (1 line, stdout and stderr):"
    assert f"\n{heading}\n  | imported user\n\nverdict: PASS" in str(report)


def test_non_determinism_is_found_across_the_boundary(user):
    assert "non_determinism" in gradlab.check(f"{user}:drifting").kinds


def test_a_callable_runs_in_process_unless_isolate_is_asked(user):
    from gradlab.sources.backprop import gradient

    assert gradlab.check(gradient).output is None
    assert gradlab.check(gradient, isolate=True).output == ""
    with pytest.raises(gradlab.GradlabError, match="cannot be sent to another process.*isolate=False"):
        gradlab.check(lambda problem, params: gradient(problem, params), isolate=True)
    assert gradlab.check(f"{user}:goodGradient", signature="seed", isolate=False).output is None


@pytest.mark.parametrize("timeout", [0, -1.0, float("nan"), "10"])
def test_a_bad_timeout_is_refused_naming_it(timeout):
    with pytest.raises(gradlab.GradlabError, match=r"timeout must be"):
        gradlab.check("x.py:f", timeout=timeout)


def test_an_error_raised_isolated_carries_the_output(tmp_path):
    (tmp_path / "loud.py").write_text("def grad(problem, params):\n    print('about to fail')\n    return 1 / 0\n")
    with pytest.raises(UserCodeError, match=r"ZeroDivisionError.*loud.py, line 3") as info:
        gradlab.check(f"{tmp_path / 'loud.py'}:grad")
    assert info.value.output == "about to fail\n"


# ------------------------------------------------------------------ output


def test_output_is_captured_in_order_and_none_reaches_gradlabs_own(worker, user, capfd):
    assert _fn(worker, user, "chatty")(3) == 3
    out = worker.output
    assert "J = 3\nwarning: slow\nfrom C\n" in out
    assert capfd.readouterr() == ("", "")


def test_output_past_the_limit_keeps_its_head_and_tail_and_counts_the_rest(tmp_path):
    w, fn = _alone(tmp_path, """
        def f():
            print("first")
            for i in range(20000):
                print("x" * 50)
            print("last")
    """, timeout=30)
    with w:
        fn()
        out = w.output
    assert out.startswith("first\n") and out.endswith("last\n") and len(out) < OUTPUT_KEPT + 200
    assert "bytes of output not kept" in out


# ------------------------------------------------------------------ hangs and crashes


def test_a_hang_is_stopped_at_the_time_limit_and_stays_stopped(tmp_path):
    w, fn = _alone(tmp_path, "def f():\n    while True:\n        pass\n")
    with w:
        start = time.monotonic()
        with pytest.raises(UserCodeStopped, match=r"f was stopped: .*time limit of 0.5 s") as info:
            fn()
        assert info.value.status == "timeout" and time.monotonic() - start < HANG + 2.0
        with pytest.raises(UserCodeStopped, match="time limit"):
            fn()


def test_the_time_limit_is_for_all_the_codes_calls_together(tmp_path):
    w, fn = _alone(tmp_path, "import time\ndef f():\n    time.sleep(0.3)\n")
    with w:
        fn()  # 0.3 s of the 0.5 s
        with pytest.raises(UserCodeStopped) as info:
            fn()
        assert info.value.status == "timeout"


def test_a_hang_while_importing_is_a_timeout_naming_the_import(tmp_path):
    (tmp_path / "slow.py").write_text("while True:\n    pass\n")
    with Worker(timeout=HANG) as w:
        with pytest.raises(UserCodeStopped, match=r"importing .*slow.py was stopped") as info:
            w.load(f"{tmp_path / 'slow.py'}:f")
    assert info.value.status == "timeout"


@pytest.mark.parametrize("body, signame, extra", [
    ("import ctypes\ndef f():\n    ctypes.string_at(0)\n", "SIGSEGV", "(at alone.py, line 3, in f)"),
    ("import os\ndef f():\n    os.abort()\n", "SIGABRT", "(at alone.py, line 3, in f)"),
    ("import os, signal\ndef f():\n    os.kill(os.getpid(), signal.SIGKILL)\n", "SIGKILL", "out-of-memory killer"),
])
def test_a_crash_is_reported_with_the_signals_name_and_gradlab_carries_on(tmp_path, monkeypatch, body, signame,
                                                                           extra):
    monkeypatch.chdir(tmp_path)
    w, fn = _alone(tmp_path, body, timeout=30)
    with w:
        with pytest.raises(UserCodeStopped) as info:
            fn()
    assert info.value.status == "crashed"
    assert f"f crashed: its process was killed by {signame}" in str(info.value) and extra in str(info.value)
    assert w._proc.returncode == -getattr(signal, signame)


def test_memory_past_a_limit_set_in_the_child_is_an_error_of_the_code_and_the_child_lives_on(tmp_path):
    w, fn = _alone(tmp_path, """
        import resource
        import numpy as np

        def f(n):
            soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, hard))
            return np.ones(n).sum()
    """, timeout=30)
    with w:
        with pytest.raises(UserCodeError, match=r"f raised MemoryError"):
            fn(2**32)  # 32 GiB
        assert fn(10) == 10.0


def test_memory_past_the_workers_limit_stops_the_child_as_crashed_and_gradlab_carries_on(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "alone.py").write_text(textwrap.dedent("""
        import numpy as np

        def hoard():
            kept = [np.ones(2**24) for _ in range(32)]  # 128 MiB a pass, 4 GiB at most
            return len(kept)

        def small():
            return float(np.ones(1000).sum())
    """))
    limit = 200 * 2**20
    start = time.monotonic()
    with Worker(timeout=30, memory=limit) as w:
        assert w.load("alone.py:small")() == 1000.0  # well under the limit: runs
        hoard = w.load("alone.py:hoard")
        with pytest.raises(UserCodeStopped) as info:
            hoard()
        assert info.value.status == "crashed"
        assert str(info.value).startswith("hoard was stopped: its process grew past the 200 MiB of memory gradlab "
                                          "lets the user's code have (the limit given) -- ")
        assert w._proc.returncode == -signal.SIGKILL  # killed by gradlab, long before its 4 GiB
        with pytest.raises(UserCodeStopped):  # and every later call says so
            w.load("alone.py:small")
    assert time.monotonic() - start < 20


def test_a_workers_default_memory_limit_is_gradlabs_own(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADLAB_MEMORY_LIMIT", "3G")
    w, fn = _alone(tmp_path, "def f():\n    return 1\n", timeout=30)
    with w:
        assert fn() == 1 and w.memory == 3 * 2**30


def test_os_exit_and_sys_exit_in_isolated_code_are_reported_as_in_process(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    w, fn = _alone(tmp_path, "import os, sys\ndef f(how):\n    os._exit(0) if how else sys.exit(3)\n", timeout=30)
    with w:
        with pytest.raises(UserCodeError, match=r"f raised ExitCalled: os\._exit\(0\) was called \(alone.py, line 3"):
            fn(True)
        with pytest.raises(UserCodeError, match=r"f raised SystemExit: 3"):
            fn(False)


def test_the_child_ends_when_gradlab_is_killed_even_while_the_code_loops(tmp_path):
    (tmp_path / "loop.py").write_text("def f():\n    while True:\n        pass\n")
    script = (f"import sys\nfrom gradlab._isolation import Worker\nw = Worker(timeout=600)\n"
              f"f = w.load({str(tmp_path / 'loop.py')!r} + ':f')\nprint(w._proc.pid, flush=True)\nf()\n")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        time.sleep(0.2)  # the child is in the loop now
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.1)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (ended, not yet reaped by init) has ended too.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def test_shrinking_stops_with_the_time_limit_instead_of_calling_the_search_flaky(tmp_path):
    (tmp_path / "later.py").write_text(
        "import gradlab\nN = [0]\n\ndef grad(problem, params):\n    N[0] += 1\n"
        "    while N[0] > 4:\n        pass\n    return 1.5 * gradlab.gradient(problem, params)\n")
    with pytest.raises(UserCodeStopped, match="time limit") as info:
        gradlab.shrink(f"{tmp_path / 'later.py'}:grad", timeout=HANG, max_examples=20)
    assert info.value.status == "timeout"


def test_a_callable_made_in_the_child_from_the_users_module_carries_its_attributes(worker, user):
    from gradlab._isolation import InWorker

    fn = worker.make(f"{user}:Scaled", InWorker(f"{user}:double"), 3, attributes=("names",))
    assert fn.names == ("x",) and fn(x=2) == 12  # double(2) * 3, computed in the child
    with_module = worker.make(f"{user}:Scaled", InWorker(str(user)), 1)
    assert with_module(x=5) == 10  # the module itself, loaded there
