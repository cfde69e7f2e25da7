"""Smoke test: every examples/*.py runs, exits 0 and prints computed numbers.

Each example runs as a user would run it: a fresh Python process, the repository on
PYTHONPATH, the working directory a fresh temporary folder, and GRADLAB_EXAMPLES_OUT
naming the folder for any files it writes (the convention in examples/README.md). Files
written anywhere else fail the test: in the working directory, in the system's temporary
folder (TMPDIR points to an empty folder of the test's own) or at any path the example
prints.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))

#: Generous per-example wall-clock limit: each is meant to run in seconds, but the suite
#: may share a loaded machine, and the first jax call compiles.
TIMEOUT_S = 300

#: A number as the examples print them: 0.123, 1.5e-10, -2.7e+03 (an integer alone is
#: not enough: exit codes and counts are integers too).
NUMBER = re.compile(r"[-+]?\d+\.\d+(?:[eE][-+]?\d+)?|[-+]?\d+(?:\.\d+)?[eE][-+]?\d+")
#: Each example prints at least this many such numbers.
MIN_NUMBERS = 5
#: An absolute path as an example prints it ("wrote /x/y.png", "figure written to /x/y.png").
PATH = re.compile(r"(?<![\w.])/[^\s:;,()'\"]+")


def test_examples_exist():
    names = {p.name for p in EXAMPLES}
    assert {"01_compare.py", "04_chain_rule_is_autodiff.py", "06_in_your_test_suite.py"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_and_prints_numbers(path, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    work = tmp_path / "cwd"
    work.mkdir()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["GRADLAB_EXAMPLES_OUT"] = str(out_dir)
    # tempfile.mkdtemp() and friends write here: an example that ignores
    # GRADLAB_EXAMPLES_OUT for a temporary folder leaves its files in it.
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env["TMPDIR"] = str(tmp)
    env["MPLBACKEND"] = "Agg"  # no display: figures go to files only
    proc = subprocess.run(
        [sys.executable, str(path)],
        cwd=work, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
    )
    assert proc.returncode == 0, f"{path.name} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    numbers = NUMBER.findall(proc.stdout)
    assert len(numbers) >= MIN_NUMBERS, f"{path.name} printed {len(numbers)} numbers:\n{proc.stdout[-2000:]}"
    # Whatever an example writes goes under GRADLAB_EXAMPLES_OUT, never into the
    # working directory (hypothesis's own cache folder aside).
    stray = [p.name for p in work.iterdir() if p.name != ".hypothesis"]
    assert not stray, f"{path.name} wrote {stray} outside GRADLAB_EXAMPLES_OUT"
    stray_tmp = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*"))
    assert not stray_tmp, f"{path.name} wrote {stray_tmp} in the temporary folder, not GRADLAB_EXAMPLES_OUT"
    for printed in PATH.findall(proc.stdout):
        file = Path(printed)
        if file.is_file():
            assert file.resolve().is_relative_to(out_dir.resolve()), (
                f"{path.name} printed {printed}, a file outside GRADLAB_EXAMPLES_OUT")

