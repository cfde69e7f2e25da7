"""The command line fed hostile arguments: never a traceback, every failure one line and status 2.

The properties introspect :func:`gradlab.cli.build_parser`, so a new command or option is
fuzzed without touching this file. Each example runs ``gradlab.cli.main`` in-process, in a
fresh folder of its own (nothing lands in the repository), with stdout and stderr captured
and a wall-clock budget: valid argument lists do real work (training, finite differences)
that may take minutes, and an example that uses up its budget was accepted as valid input.

Safety of the fuzzer itself:

- ``gradlab check TARGET`` imports and runs code by design. Every target the strategies
  produce is one of :data:`SAFE_TARGETS` (this file's own fixtures, missing files, module
  names Python cannot find); free text never contains ``:`` and so never names a function.
  :func:`_assert_safe` enforces it on every argument list before it runs.
- Free text never contains ``/``, so an output path cannot leave the example's folder.
- Huge network sizes and example counts are in the pool (the resource guards must refuse
  them up front), and every example runs with ``GRADLAB_MEMORY_LIMIT`` at :data:`MEMORY_CAP`,
  so no accepted example can take more memory than that.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.util
import io
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradlab
from gradlab import cli
from gradlab.cli import EXIT_SOFTWARE, EXIT_STATUSES, EXIT_USAGE, main
from gradlab.cli import args as cli_args
from gradlab.cli import compare as cli_compare
from gradlab.cli.status import DEBUG_ENV

# slow: hundreds of fuzzed command lines, and some real processes.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent

# --------------------------------------------------------------------------- the budget

#: Wall-clock seconds one example may run. Every invalid argument list fails in
#: milliseconds; a valid one starts real work (jit compilation of a new network shape alone
#: takes ~0.3 s; default training ~1 s on a busy two-core machine), which the budget cuts
#: short. 1 s lets the quick valid cases (compare on a small network, explain, predict)
#: finish and so check their output too.
EXAMPLE_BUDGET_S = 1.0

#: At most this share of a property's examples may use up the budget: the property tests
#: only the examples that finish, so most of them must.
MAX_BUDGET_SHARE = 0.5


#: After the first alarm, it repeats this often: code that handles Ctrl-C by finishing up
#: (the trainer saves the best weights so far) is interrupted again if it takes long.
REPEAT_S = 0.5


class _OutOfBudget(KeyboardInterrupt):
    """The timer ends an example as Ctrl-C would.

    A KeyboardInterrupt, so that neither main() (which reports it as status 130) nor
    hypothesis inside ``gradlab check --shrink`` (which re-raises it at once) can mistake it
    for a failure of the code under test; and so that the property covers Ctrl-C at
    arbitrary points as well.
    """


_fired = []


def _in_a_callback_python_ignores(frame) -> bool:
    """Whether ``frame`` runs inside a gc callback, a weakref callback or a ``__del__``.

    Python prints an exception raised there ("Exception ignored in ...") and carries on, so
    an interrupt raised there would be lost: the command would finish with its normal
    status although the budget ran out (on a busy machine, where alarms are many, this
    happened about once a run).
    """
    callbacks = {getattr(cb, "__code__", None) for cb in gc.callbacks}
    while frame is not None:
        code = frame.f_code
        if (code in callbacks or code.co_name == "__del__"
                or code.co_filename.endswith(("weakref.py", "_weakrefset.py"))):
            return True
        frame = frame.f_back
    return False


def _on_alarm(signum, frame):
    if _in_a_callback_python_ignores(frame):
        return  # the repeating timer fires again REPEAT_S later, outside the callback
    _fired.append(True)
    raise _OutOfBudget()


@pytest.fixture
def alarm():
    """SIGALRM raises :class:`_OutOfBudget`; timer and handler are restored afterwards."""
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --------------------------------------------------------------------------- fixtures

#: A correct gradient and cost in both signatures, plus functions that go wrong in the ways
#: a user's file does. These files are the only code ``gradlab check`` may run here.
_GOOD = '''
import sys

import numpy as np
import gradlab

NOT_A_FUNCTION = 3


def grad(problem, params):
    return gradlab.gradient(problem, params, "backprop")


def cost(problem, params):
    return gradlab.cost(problem, params)


def _seed_problem(nn_params, n_in, n_hidden, K, X, y, lam):
    net = gradlab.Network((int(n_in), int(n_hidden), int(K)))
    return gradlab.Problem(net, X, np.asarray(y).ravel().astype(int), lam=float(lam))


def nnGradient(nn_params, n_in, n_hidden, K, X, y, lam):
    return gradlab.gradient(_seed_problem(nn_params, n_in, n_hidden, K, X, y, lam), nn_params, "backprop")


def nnCostFunction(nn_params, n_in, n_hidden, K, X, y, lam):
    return gradlab.cost(_seed_problem(nn_params, n_in, n_hidden, K, X, y, lam), nn_params)


def wrong(problem, params):
    return 2.0 * gradlab.gradient(problem, params, "backprop")


def raises(problem, params):
    raise RuntimeError("the user's gradient failed\\non two lines")


def returns_none(problem, params):
    return None


def returns_nan(problem, params):
    return np.full(problem.network.n_params, np.nan)


def returns_text(problem, params):
    return "gradient"


def no_arguments():
    return 0


def exits(problem, params):
    sys.exit(3)
'''

_USER_FILES = {
    "good.py": _GOOD,
    "syntax_error.py": "def grad(problem, params:\n    return params\n",
    "import_raises.py": "raise ImportError('a dependency of the user is missing')\ndef grad(p, q):\n    return q\n",
    "empty.py": "",
    "exits_on_import.py": "import sys\nsys.exit('bye')\n",
}


def _write_idx(path, array, code=0x08):
    header = bytes([0, 0, code, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    Path(path).write_bytes(header + array.tobytes())


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """Files for the path pool, made once: valid, empty, garbage, truncated, folders, code."""
    d = tmp_path_factory.mktemp("fuzz_files")
    for name, text in _USER_FILES.items():
        (d / name).write_text(text)
    (d / "a_folder.py").mkdir()
    (d / "a_folder.npz").mkdir()
    (d / "empty.npz").write_bytes(b"")
    (d / "empty.mat").write_bytes(b"")
    (d / "empty.idx").write_bytes(b"")
    garbage = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    for name in ("garbage.npz", "garbage.mat", "garbage.idx", "garbage.idx.gz", "garbage.png"):
        (d / name).write_bytes(garbage)
    (d / "text.npz").write_text("not a model\n")
    # Named pipes stand in for devices: reading one would block, a save would replace it.
    os.mkfifo(d / "pipe.npz")
    os.mkfifo(d / "pipe.png")
    model = d / "model.npz"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["train", "--maxiter", "2", "--hidden", "3", "--quiet", "--out", str(model)]) == 0
    raw = model.read_bytes()
    (d / "truncated.npz").write_bytes(raw[: len(raw) // 2])
    np.savez(d / "foreign.npz", a=np.ones(3))
    X, y = gradlab.data.load_digits(raw=True)
    scipy.io.savemat(d / "small.mat", {"X": X[:40, :16].astype(np.float64), "y": (y[:40] % 3).reshape(-1, 1)})
    scipy.io.savemat(d / "wrong_keys.mat", {"A": np.ones((3, 3))})
    _write_idx(d / "images.idx", X[:30].reshape(-1, 8, 8).astype(np.uint8))
    _write_idx(d / "labels.idx", y[:30].astype(np.uint8))
    _write_idx(d / "short_labels.idx", y[:7].astype(np.uint8))
    return d


def _paths(d: Path) -> list[str]:
    """Paths into the pool folder: every fixture file, folders, missing and relative names."""
    names = sorted(p.name for p in d.iterdir())
    return ([str(d / n) for n in names]
            + [str(d), str(d / "missing.npz"), str(d / "missing" / "deeper.png"), "out.png", "out.npz",
               "out.pdf", "out.svg", "out", ".npz", "."])


def _safe_targets(d: Path) -> list[str]:
    """``check`` targets that run only this file's fixtures, or nothing at all."""
    functions = ("grad", "cost", "nnGradient", "nnCostFunction", "wrong", "raises", "returns_none",
                 "returns_nan", "returns_text", "no_arguments", "exits", "NOT_A_FUNCTION", "missing_function")
    files = [f"{d / 'good.py'}:{f}" for f in functions]
    files += [f"{d / name}:grad" for name in ("syntax_error.py", "import_raises.py", "empty.py",
                                              "exits_on_import.py", "a_folder.py", "missing.py")]
    modules = ["gradlab_fuzz_no_such_module:grad", "gradlab_fuzz_no_such_package.sub:grad"]
    malformed = [f"{d / 'good.py'}", f"{d / 'good.py'}:", ":grad", f"{d / 'good.py'}:1bad", "::"]
    return files + modules + malformed


def _assert_safe(argv, d: Path) -> None:
    """No argument can make ``gradlab check`` import code other than the pool's own files."""
    for token in argv:
        if token.startswith("-") and "=" in token:
            token = token.partition("=")[2]  # --cost=VALUE
        if ":" not in token:
            continue
        where = token.rpartition(":")[0]
        if not where:
            continue  # a malformed target: refused before any import
        if where.endswith(".py") or "/" in where or os.sep in where:
            assert os.path.abspath(where).startswith(str(d) + os.sep), token
        else:
            top = where.split(".")[0]
            # find_spec of a top-level name searches the path without importing anything.
            assert top and importlib.util.find_spec(top) is None, f"{token} names an importable module"


# --------------------------------------------------------------------------- hostile values

#: Network sizes, hidden sizes and example counts in the pool: ordinary ones, at most one
#: entry of a size list as large as MAX_POOL_SIZE, or one of HUGE_SIZES, which the resource
#: guards must refuse up front (the properties run under MEMORY_CAP, so that no accepted
#: example can allocate more than that either).
MAX_POOL_SIZE = 10**4
HUGE_SIZES = ["100000", "4000000000", str(2**62), str(2**63 - 1), str(10**30)]
#: GRADLAB_MEMORY_LIMIT while fuzzing: the guard refuses anything estimated above it, so an
#: example never takes more than this of the shared machine's memory.
MEMORY_CAP = "1G"
_SIZE_LIKE = {"sizes", "hidden", "examples"}

#: Numbers as a user (or a script gone wrong) types them: ASCII and not, signs, exponents,
#: the special floats, values that overflow int64 and float64, and some valid ones.
NUMBERS = [
    "0", "1", "2", "3", "5", "17", "100", "-1", "-7", "+3", "-0", "0.5", "1.5", "-0.5", "0.999", "1e3", "2.0",
    str(10**30), str(2**63), str(-(2**63) - 1), str(2**31), "9" * 400, "1e308", "-1e308", "1e309", "-0.0", "0.0",
    "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e-320", "4.9e-324", "0x10", "0b11", "1_000",
    "١٢", "٣", "१०", "½", "²", "３", " 7 ", "7\n", "", " ", "-", "--",
]
_SIZE_NUMBERS = ["0", "1", "2", "3", "4", "5", "10", "25", "-1", "-3", "+2", "١٢", "0x10", "1e3", "2.5", "nan",
                 "", " ", "1_0"]

_UNSAFE_CHARS = "/:" + os.sep
texts = st.text(max_size=12).filter(lambda s: not any(c in s for c in _UNSAFE_CHARS))
hostile_text = st.one_of(
    texts,
    st.sampled_from(["", " ", "-", "--", "-x", "--nope", "\x00", "\n", "\t", "é", "ü.npz", "数字", "🙂",
                     "\u202e", "a" * 300, "-" + "a" * 5, "=", "--=", "None", "none", "True"]),
)


def _size_entry():
    return st.sampled_from(_SIZE_NUMBERS)


def _size_list(*, allow_none: bool):
    """Comma-separated sizes: small entries, and at most one big one (MAX_POOL_SIZE or huge)."""
    entries = st.lists(_size_entry(), min_size=0, max_size=5)

    def join(parts, big, at):
        parts = list(parts)
        if big:
            parts.insert(at % (len(parts) + 1), big)
        return ",".join(parts)

    big = st.sampled_from(["", str(MAX_POOL_SIZE), *HUGE_SIZES])
    joined = st.builds(join, entries, big, st.integers(0, 5))
    extra = ["none", "None", ",", "3,", ",3", "3,,5", "3;5", "3 5", "3,5,3", "64,32"] if allow_none else \
        [",", "3,", ",3", "3,,5", "3;5", "3 5", "3,5,3", "4,6,6,5,2"]
    return st.one_of(joined, st.sampled_from(extra), hostile_text)


#: Plausible values, by what an option parses or (for strings) by its name: most values an
#: example gets are plausible, so that an argument list gets past the first check and the
#: hostile value among them meets the code behind the parser.
_PLAUSIBLE_INT = ["0", "1", "2", "3", "5", "10"]
_PLAUSIBLE_FLOAT = ["0", "0.5", "1", "1e-3", "0.2", "3"]
_PLAUSIBLE_BY_DEST = {
    "sizes": ["3,5,3", "2,2", "4,3,2", "3,4,4,2", "5,1", "1,3"],
    "hidden": ["3", "2,2", "none", "5"],
    "examples": ["1", "2", "5", "7"],
    "sources": ["backprop,jax", "jax,numeric", "backprop,numeric-forward", "backprop,numeric-complex,jax"],
    "data": ["digits", "{d}/small.mat", "{d}/images.idx"],
    "labels": ["{d}/labels.idx"],
    "model": ["{d}/model.npz"],
    "out": ["out.png", "out.npz", "out.svg"],
    "cost": ["cost", "nnCostFunction"],
}


#: The argument types of integer and decimal options (argparse's and gradlab's own).
_INTEGER_TYPES = (int, cli_args.integer)
_NUMBER_TYPES = (float, cli_args.number)


def _plausible(action: argparse.Action, d: Path, safe_targets: list[str]):
    values = list(action.choices or ())
    if action.dest in _PLAUSIBLE_BY_DEST:
        values += [v.format(d=d) for v in _PLAUSIBLE_BY_DEST[action.dest]]
    elif action.type in _INTEGER_TYPES:
        values += _PLAUSIBLE_INT
    elif action.type in _NUMBER_TYPES:
        values += _PLAUSIBLE_FLOAT
    if action.dest == "target":  # the functions that run: right, wrong, seed-style
        values += [t for t in safe_targets if t.endswith(("good.py:grad", "good.py:wrong", "good.py:nnGradient"))]
    return st.sampled_from(values) if values else st.sampled_from(_paths(d))


def _hostile(action: argparse.Action, d: Path, safe_targets: list[str]):
    """Hostile values for one option or positional, chosen by what it parses."""
    dest = action.dest
    if dest in ("target", "cost"):
        return st.one_of(st.sampled_from(safe_targets), texts)
    if dest in _SIZE_LIKE:
        if action.type in _INTEGER_TYPES:
            return st.sampled_from(_SIZE_NUMBERS + [str(MAX_POOL_SIZE), "1000", *HUGE_SIZES])
        return _size_list(allow_none=(dest == "hidden"))
    if dest == "sources":
        from gradlab.sources import SOURCES

        names = st.lists(st.sampled_from(list(SOURCES) + ["", "nope", " jax", "JAX"]), max_size=4)
        return st.one_of(names.map(",".join), hostile_text)
    if action.type is not None and action.type is not str:
        return st.one_of(st.sampled_from(NUMBERS), hostile_text)
    return st.one_of(st.sampled_from(_paths(d)), hostile_text, st.sampled_from(NUMBERS))


#: One value in this many is hostile, the rest plausible: with a few options per example,
#: about half of the argument lists are valid or fail on exactly one value.
HOSTILE_ONE_IN = 5


def _values_for(action: argparse.Action, d: Path, safe_targets: list[str]):
    """A value for one option or positional: hostile one time in HOSTILE_ONE_IN, else plausible."""
    return st.integers(1, HOSTILE_ONE_IN).flatmap(
        lambda k: _hostile(action, d, safe_targets) if k == 1 else _plausible(action, d, safe_targets))


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("gradlab's parser has no subcommands")


COMMANDS = list(_subparsers())


#: Values that bound the work of a valid argument list, put first in half the examples:
#: ``train``'s default 100 iterations take ~1 s on a busy machine and would use up most
#: examples' budget.
_BOUNDS = {"maxiter": "3"}


@st.composite
def command_argvs(draw, command: str, d: Path, safe_targets: list[str]):
    """``command`` followed by a random selection of its own options and positionals.

    Options come in any order, repeated, with a value, ``--flag=value``, or without their
    value; positionals keep their order among themselves (or argparse would just refuse the
    first one out of place); required options are usually there, and sometimes junk.
    """
    sub = _subparsers()[command]
    options = [a for a in sub._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]
    positionals = [a for a in sub._actions if not a.option_strings]

    def option(action):
        flag = draw(st.sampled_from(action.option_strings))
        if action.nargs == 0:
            return [flag]
        how = draw(st.sampled_from(["value"] * 5 + ["equals", "missing"]))
        value = draw(_values_for(action, d, safe_targets))
        if how == "missing":
            return [flag]  # no value: at the end, or eating the next flag
        return [f"{flag}={value}"] if how == "equals" else [flag, value]

    pieces = [option(a) for a in options if a.required and draw(st.integers(1, HOSTILE_ONE_IN)) > 1]
    pieces += [option(draw(st.sampled_from(options))) for _ in range(draw(st.integers(0, 5)))]
    if draw(st.integers(1, HOSTILE_ONE_IN)) == 1:  # positional junk or an unknown flag
        pieces.append([draw(st.one_of(hostile_text, st.sampled_from(["--unknown", "-z", "extra", "--"])))])
    pieces = [pieces[i] for i in draw(st.permutations(range(len(pieces))))]
    at = 0
    for action in positionals:
        if draw(st.integers(1, HOSTILE_ONE_IN)) > 1:  # usually present: a missing one ends the parse
            at = draw(st.integers(at, len(pieces)))
            pieces.insert(at, [draw(_values_for(action, d, safe_targets))])
            at += 1
    bound = [[a.option_strings[0], _BOUNDS[a.dest]] for a in options if a.dest in _BOUNDS]
    if bound and draw(st.booleans()):
        pieces = bound + pieces  # first, so that a drawn value of the same option overrides it
    argv = [command] + [token for piece in pieces for token in piece]
    _assert_safe(argv, d)
    return argv


def _all_flags() -> list[str]:
    flags = set()
    for sub in _subparsers().values():
        for action in sub._actions:
            flags.update(action.option_strings)
    return sorted(flags)


@st.composite
def any_tokens(draw, d: Path, safe_targets: list[str]):
    """Arbitrary token lists: commands, anyone's flags, numbers, text, paths, safe targets."""
    token = st.one_of(
        st.sampled_from(COMMANDS + ["--version", "-h", "--help"]),
        st.sampled_from(_all_flags()),
        st.sampled_from(NUMBERS),
        hostile_text,
        st.sampled_from(_paths(d)),
        st.sampled_from(safe_targets),
        _size_list(allow_none=True),
    )
    first = draw(st.one_of(st.sampled_from(COMMANDS), token))
    argv = [first] + draw(st.lists(token, max_size=8))
    _assert_safe(argv, d)
    return argv


# --------------------------------------------------------------------------- one run


def _run(argv, d: Path, work: Path):
    """Run main(argv) in a fresh folder; returns (outcome, stdout, stderr, budget_used).

    outcome is the exit status, "interrupted" when the budget's KeyboardInterrupt got out of
    main, or ("exit", code) when SystemExit escaped (only --help / --version may do that).
    """
    _assert_safe(argv, d)
    cwd = os.getcwd()
    folder = tempfile.mkdtemp(dir=work)
    out, err = io.StringIO(), io.StringIO()
    _fired.clear()
    # An alarm that lands in a finaliser or weakref callback (the garbage collector runs
    # them at arbitrary points) is swallowed by Python ("Exception ignored in ..."), and the
    # command rightly goes on: such a firing did not stop the example, so it is not counted.
    swallowed = []
    previous_hook = sys.unraisablehook

    def unraisable(info):
        if isinstance(info.exc_value, _OutOfBudget):
            swallowed.append(info)
        else:
            previous_hook(info)

    sys.unraisablehook = unraisable
    os.chdir(folder)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                signal.setitimer(signal.ITIMER_REAL, EXAMPLE_BUDGET_S, REPEAT_S)
                try:
                    outcome = main(argv)
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            except _OutOfBudget:
                outcome = "interrupted"
            except SystemExit as exc:
                outcome = ("exit", exc.code)
    finally:
        sys.unraisablehook = previous_hook
        os.chdir(cwd)
        shutil.rmtree(folder, ignore_errors=True)
    return outcome, out.getvalue(), err.getvalue(), len(_fired) > len(swallowed)


def _assert_clean(argv, outcome, stdout, stderr, budget_used) -> None:
    """The property: no escape but --help/--version, a documented status, one-line errors."""
    shown = f"argv={argv!r}\nstdout={stdout[-2000:]!r}\nstderr={stderr[-3000:]!r}"
    assert "Traceback" not in stderr, shown
    if budget_used:
        # Valid input doing real work, stopped as by Ctrl-C: main reports status 130, or the
        # repeated alarm caught it while it was finishing up.
        assert outcome in (cli.EXIT_INTERRUPTED, "interrupted"), shown
        return
    if isinstance(outcome, tuple):
        assert outcome == ("exit", 0) and any(t in ("-h", "--help", "--version") for t in argv), shown
        return
    assert outcome != EXIT_SOFTWARE, "internal error (fix it at its source):\n" + shown
    # Output goes to memory here: an I/O error means a file error that escaped unnamed.
    assert outcome != cli.EXIT_IO, "an OSError escaped (turn it into a GradlabError naming the file):\n" + shown
    assert outcome in EXIT_STATUSES and outcome != cli.EXIT_INTERRUPTED, shown
    if outcome == EXIT_USAGE:
        assert stderr.startswith("gradlab: error: ") and stderr.count("\n") == 1 and stderr.endswith("\n"), shown


@pytest.fixture(scope="module")
def warm():
    """Import jax and matplotlib and compile the default network once, outside any budget."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        main(["compare"])
    import matplotlib.figure  # noqa: F401 - import cost, paid once


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A folder whose sub-folders are the examples' working directories (under MEMORY_CAP)."""
    monkeypatch.setenv("GRADLAB_MEMORY_LIMIT", MEMORY_CAP)
    w = tmp_path / "runs" / "here"
    w.mkdir(parents=True)
    return w


def _fuzz(strategy, max_examples: int, d: Path, work: Path) -> Counter:
    outcomes: Counter = Counter()

    # `gradlab check --shrink` runs hypothesis's own search inside this property: allowed here.
    @settings(max_examples=max_examples, database=None,
              suppress_health_check=[*settings.default.suppress_health_check, HealthCheck.nested_given])
    @given(strategy)
    def prop(argv):
        outcome, stdout, stderr, budget_used = _run(argv, d, work)
        _assert_clean(argv, outcome, stdout, stderr, budget_used)
        outcomes["budget" if budget_used else "exit" if isinstance(outcome, tuple) else outcome] += 1

    prop()
    return outcomes


# --------------------------------------------------------------------------- the properties

#: Examples per command: a quarter of the profile's count (50 under ``ci``). Seven commands
#: x 50 examples, a fifth of which may run up to EXAMPLE_BUDGET_S, keep the file well under a
#: minute on two cores; the full 200 per command would take minutes. ``explore`` gets 250.
EXAMPLES_PER_COMMAND = max(1, settings.default.max_examples // 4)
#: Examples of fully arbitrary token lists (mostly refused by the parser: cheap).
EXAMPLES_ANY_TOKENS = max(1, settings.default.max_examples * 3 // 4)


@pytest.mark.parametrize("command", COMMANDS)
def test_fuzzed_options_of_each_command_fail_in_one_line_with_status_2(command, pool, warm, work, alarm):
    targets = _safe_targets(pool)
    outcomes = _fuzz(command_argvs(command, pool, targets), EXAMPLES_PER_COMMAND, pool, work)
    total = sum(outcomes.values())
    assert outcomes["budget"] <= MAX_BUDGET_SHARE * total, outcomes


def test_arbitrary_token_lists_fail_in_one_line_with_status_2(pool, warm, work, alarm):
    outcomes = _fuzz(any_tokens(pool, _safe_targets(pool)), EXAMPLES_ANY_TOKENS, pool, work)
    total = sum(outcomes.values())
    assert outcomes["budget"] <= MAX_BUDGET_SHARE * total, outcomes


def test_the_fuzzer_never_names_an_importable_module(pool):
    # The guard itself must be able to fail: a real module, a file outside the pool.
    for bad in (["check", "os:system"], ["check", "json.decoder:JSONDecoder"], ["check", "/etc/x.py:f"]):
        with pytest.raises(AssertionError):
            _assert_safe(bad, pool)
    _assert_safe(["check", *_safe_targets(pool)], pool)


# --------------------------------------------------------------------------- regressions
# What the fuzzer found, as plain examples: each fails for the one reason its row names.

_HUGE = str(10**30)


@pytest.mark.parametrize(
    "argv, message",
    [
        # int() and float() take non-ASCII digits: '١٢' was 12 examples.
        (["compare", "--examples", "١٢"], r"argument --examples: must be an integer such as 5 \(digits 0-9\); got '١٢'"),
        (["train", "--hidden", "١٢"], r"argument --hidden: hidden must be comma-separated integers such as 25"),
        (["compare", "--sizes", "3,٥,3"], r"argument --sizes: sizes must be comma-separated integers such as 3,5,3"),
        (["train", "--lambda", "٠.٥"], r"argument --lambda: must be a finite number such as 0.5 or 1e-3; got '٠.٥'"),
        # Python literals that are not what a user types.
        (["compare", "--examples", "0x10"], r"argument --examples: must be an integer such as 5"),
        (["compare", "--examples", "1_000"], r"argument --examples: must be an integer such as 5"),
        (["compare", "--seed", "1e3"], r"argument --seed: must be an integer such as 5"),
        # float() takes nan and inf, and 1e309 overflows to inf.
        (["compare", "--lambda", "nan"], r"argument --lambda: must be a finite number such as 0.5"),
        (["train", "--test-fraction=-inf"], r"argument --test-fraction: must be a finite number such as 0.5"),
        (["check", "f.py:g", "--weight-scale", "Infinity"], r"argument --weight-scale: must be a finite number"),
        (["compare", "--lambda", "1e309"], r"argument --lambda: must be a finite number \(at most 1.79769e\+308"),
        # Integers beyond 64 bits: --examples 10**30 reached numpy ("Maximum allowed size exceeded").
        (["compare", "--examples", _HUGE], r"argument --examples: must be an integer within 64 bits"),
        (["explain", "--example", _HUGE], r"argument --example: must be an integer within 64 bits \(\|n\| <= 9223372036854775807\)"),
        (["check", "f.py:g", "--max-examples", _HUGE], r"argument --max-examples: must be an integer within 64 bits"),
        (["compare", "--sizes", f"{_HUGE},3"], r"argument --sizes: sizes must be integers within 64 bits \(\|n\| <= 9223372036854775807\)"),
        # A huge lambda overflowed the gradient's norm (steps: an internal "All-NaN slice").
        (["steps", "--lambda", "1e200"], r"--lambda must be a finite real number >= 0 and <= 1e\+150; got --lambda 1e200"),
        (["compare", "--lambda", "1e308"], r"--lambda must be a finite real number >= 0 and <= 1e\+150"),
        # No command printed the help on stdout with status 2 and nothing on stderr.
        ([], r"a command is required, one of compare, check, train"),
        # argparse joined unrecognised arguments with spaces: an empty one vanished.
        (["compare", ""], r"unrecognized arguments: ''"),
        (["compare", "--json", " ", "x\ny"], r"unrecognized arguments: ' ' 'x\\ny'"),
    ],
)
def test_bad_values_found_by_fuzzing_are_one_line_errors(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == EXIT_USAGE
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("gradlab: error: ") and err.count("\n") == 1
    assert re.search(message, err), err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--out", "no_such_folder/m.npz"], r"argument --out: the folder \S*no_such_folder does not exist"),
        (["train", "--out", "."], r"argument --out: \. is a folder; give the path of a file in it"),
        (["plot", "digits", "--out", ""], r"argument --out: --out must be a file path; got --out=''"),
        (["steps", "--out", "no_such_folder/s.png"], r"argument --out: the folder \S*no_such_folder does not exist"),
    ],
)
def test_an_unwritable_out_is_refused_before_any_work(argv, message, capsys, tmp_path, monkeypatch):
    # Training used to run to the end, printing progress, and only then fail to save.
    monkeypatch.chdir(tmp_path)
    assert main(argv) == EXIT_USAGE
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and re.search(message, err), err


def test_an_out_name_too_long_for_the_file_system_is_a_usage_error(capsys, tmp_path, monkeypatch):
    # mkstemp's OSError (ENAMETOOLONG) escaped as an internal error.
    monkeypatch.chdir(tmp_path)
    name = "m" * (os.pathconf(tmp_path, "PC_NAME_MAX") + 1)
    assert main(["train", "--maxiter", "1", "--hidden", "2", "--quiet", "--out", name]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(r"argument --out: cannot write in the folder .*: File name too long", err), err
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: gradlab.debug_problem((3, 5, 3), 5, lam=2e150), r"lam must be a finite real number >= 0 and <= 1e\+150"),
        (lambda: gradlab.debug_problem().with_lam(float("1e200")), r"lam must be .* <= 1e\+150; got lam=1e\+200"),
        (lambda: gradlab.check(lambda problem, params: params, weight_scale=1e5),
         r"weight_scale must be a finite real number >= 0 and <= 10000; got weight_scale=100000.0"),
    ],
)
def test_library_bounds_found_by_fuzzing(call, message):
    with pytest.raises(gradlab.GradlabError, match=message):
        call()


@pytest.mark.parametrize(
    "target, message",
    [
        # SystemExit is no Exception: it went past check's handlers and ended gradlab with the
        # user's status and no message.
        ("good.py:exits", r"grad_fn exits raised SystemExit: 3"),
        ("exits_on_import.py:grad", r"target: importing .*exits_on_import.py raised SystemExit: bye"),
    ],
)
def test_sys_exit_in_checked_code_is_a_usage_error(target, message, pool, capsys):
    assert main(["check", f"{pool}/{target}"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("gradlab: error: ") and err.count("\n") == 1 and re.search(message, err), err


# --------------------------------------------------------------------------- main()'s last line of defence


def _boom(args):
    raise RuntimeError("a bug\nover two lines")


def test_an_internal_error_is_one_line_with_status_70(monkeypatch, capsys):
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    monkeypatch.setattr(cli_compare, "run_compare", _boom)
    assert main(["compare"]) == EXIT_SOFTWARE
    out, err = capsys.readouterr()
    assert err == ("gradlab: internal error: RuntimeError: a bug over two lines (a bug in gradlab; "
                   "run with GRADLAB_DEBUG=1 for the traceback)\n")


def test_gradlab_debug_prints_the_traceback_of_an_internal_error(monkeypatch, capsys):
    monkeypatch.setenv(DEBUG_ENV, "1")
    monkeypatch.setattr(cli_compare, "run_compare", _boom)
    assert main(["compare"]) == EXIT_SOFTWARE
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and "RuntimeError: a bug" in err


def test_out_of_memory_is_a_usage_error_not_a_bug(monkeypatch, capsys):
    def too_big(args):
        raise MemoryError("Unable to allocate 74.5 GiB for an array with shape (100000, 100000)")

    monkeypatch.setattr(cli_compare, "run_compare", too_big)
    assert main(["compare"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("gradlab: error: out of memory (Unable to allocate 74.5 GiB") and err.count("\n") == 1


def test_help_lists_every_exit_status(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    listed = re.findall(r"^  (\d+) ", out.split("exit status:")[1], flags=re.M)
    assert [int(s) for s in listed] == list(EXIT_STATUSES)


# --------------------------------------------------------------------------- a real process


def _gradlab(*args, code=None, env_extra=None, cwd=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop(DEBUG_ENV, None)
    env.update(env_extra or {})
    argv = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "gradlab", *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


@pytest.mark.parametrize(
    "args",
    [
        ("compare", "--examples", "١٢"),
        ("compare", "--lambda", "nan"),
        ("train", "--out", "no_such_folder/m.npz"),
        ("predict", "missing.npz"),
        ("check", "no_such_file.py:grad"),
        (),
    ],
)
def test_a_real_process_prints_one_line_and_exits_2(args, tmp_path):
    proc = _gradlab(*args, cwd=tmp_path)
    assert proc.returncode == EXIT_USAGE, proc.stderr
    assert proc.stdout == "" and proc.stderr.startswith("gradlab: error: ") and proc.stderr.count("\n") == 1
    assert os.listdir(tmp_path) == []


# A bug injected into a real process by the test's own script (the product has no such hook).
_INJECT = (
    "import sys\n"
    "import gradlab.cli as cli\n"
    "import gradlab.cli.compare\n"
    "def boom(args):\n"
    "    raise RuntimeError('injected')\n"
    "gradlab.cli.compare.run_compare = boom\n"
    "sys.exit(cli.main(sys.argv[1:]))\n"
)


def test_a_real_process_reports_an_internal_error_in_one_line_with_status_70(tmp_path):
    proc = _gradlab("compare", code=_INJECT, cwd=tmp_path)
    assert proc.returncode == EXIT_SOFTWARE, proc.stderr
    assert proc.stderr == ("gradlab: internal error: RuntimeError: injected (a bug in gradlab; "
                           "run with GRADLAB_DEBUG=1 for the traceback)\n")


def test_a_real_process_with_gradlab_debug_prints_the_traceback(tmp_path):
    proc = _gradlab("compare", code=_INJECT, env_extra={DEBUG_ENV: "1"}, cwd=tmp_path)
    assert proc.returncode == EXIT_SOFTWARE
    assert proc.stderr.startswith("Traceback (most recent call last):") and "RuntimeError: injected" in proc.stderr


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (a device whose writes fail: disk full)")
def test_output_to_a_full_disk_is_one_line_with_status_74(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "gradlab", "compare"], stdout=full, stderr=subprocess.PIPE,
                              text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == cli.EXIT_IO, proc.stderr
    assert proc.stderr == "gradlab: error: input/output error: No space left on device\n"


def test_output_on_an_ascii_terminal_escapes_what_it_cannot_encode(tmp_path):
    # Reports hold λ, ≤, ε and paths hold whatever the user named: an ASCII stdout raised
    # UnicodeEncodeError (an internal error) when training finished and said "wrote ü.npz".
    proc = _gradlab("train", "--maxiter", "1", "--hidden", "2", "--quiet", "--out", "ü.npz",
                    env_extra={"PYTHONIOENCODING": "ascii"}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "wrote \\xfc.npz" in proc.stdout
    assert (tmp_path / "ü.npz").is_file()


def test_a_jax_that_cannot_start_is_one_line_with_status_2(tmp_path):
    # A misconfigured environment surfaced as an AssertionError deep inside jax (status 70).
    proc = _gradlab("compare", env_extra={"JAX_PLATFORMS": "nosuchplatform"}, cwd=tmp_path)
    assert proc.returncode == EXIT_USAGE, proc.stderr
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("gradlab: error: jax could not start")
    assert "JAX_PLATFORMS='nosuchplatform' is set" in proc.stderr
