"""jax's persistent compilation cache: gradlab's folder, its guards, and a user's suite under xdist."""

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gradlab.sources import autodiff

ROOT = Path(__file__).resolve().parent.parent


def _env(**changes):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    for k, v in changes.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def test_the_cache_is_off_unless_asked_for(monkeypatch):
    monkeypatch.delenv(autodiff.CACHE_ENV, raising=False)
    assert autodiff.cache_folder() is None


@pytest.mark.parametrize("value", ["", "off", "OFF", "0", "no", "false", "none"])
def test_the_cache_can_be_turned_off(monkeypatch, value):
    monkeypatch.setenv(autodiff.CACHE_ENV, value)
    assert autodiff.cache_folder() is None


def test_a_named_folder_is_created_private(monkeypatch, tmp_path):
    folder = tmp_path / "a" / "b"
    monkeypatch.setenv(autodiff.CACHE_ENV, str(folder))
    assert autodiff.cache_folder() == str(folder)
    assert stat.S_IMODE(folder.stat().st_mode) & 0o077 == 0


@pytest.mark.parametrize("value", ["on", "ON", "1", "yes", "true"])
def test_on_is_a_folder_under_the_users_cache_home(monkeypatch, tmp_path, value):
    monkeypatch.setenv(autodiff.CACHE_ENV, value)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert autodiff.cache_folder() == str(tmp_path / "gradlab" / "jax")


def test_a_relative_folder_is_made_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(autodiff.CACHE_ENV, "cache")
    assert autodiff.cache_folder() == str(tmp_path / "cache")


def test_a_folder_others_may_write_is_refused(monkeypatch, tmp_path):
    # jax loads compiled code from the folder: another user's writes would run as ours.
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o777)
    monkeypatch.setenv(autodiff.CACHE_ENV, str(folder))
    assert autodiff.cache_folder() is None


def test_a_folder_that_cannot_be_made_turns_the_cache_off(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(autodiff.CACHE_ENV, str(blocker / "jax"))
    assert autodiff.cache_folder() is None


_SHOW_SETTINGS = (
    "import json\n"
    "from gradlab.sources import autodiff\n"
    "jax = autodiff.ready()\n"
    "print(json.dumps([jax.config.jax_compilation_cache_dir, jax.config.jax_persistent_cache_min_compile_time_secs]))\n"
)


@pytest.mark.slow  # fresh processes
def test_gradlab_sets_its_folder_but_leaves_a_users_own_cache_alone(tmp_path):
    def settings(**env):
        proc = subprocess.run([sys.executable, "-c", _SHOW_SETTINGS], env=_env(**env), capture_output=True,
                              text=True, timeout=120, cwd=tmp_path, check=True)
        return json.loads(proc.stdout)

    # (Off by default and with "off": cache_folder() is None, tested above, and then
    # gradlab changes nothing.)
    mine = tmp_path / "mine"
    assert settings(GRADLAB_JAX_CACHE=str(mine), JAX_COMPILATION_CACHE_DIR=None) == [
        str(mine), autodiff.CACHE_MIN_COMPILE_S]
    theirs = tmp_path / "theirs"
    assert settings(GRADLAB_JAX_CACHE=str(mine), JAX_COMPILATION_CACHE_DIR=str(theirs))[0] == str(theirs)


_USER_SUITE = '''
from hypothesis import given, settings
from gradlab.testing import assert_gradients_agree, networks, problems_with_parameters


@settings(max_examples=10, deadline=None)
@given(problems_with_parameters(networks(min_layers=2, max_layers=4)))
def test_backprop_matches_jax(case):
    problem, params = case
    assert_gradients_agree(problem, params, sources=("backprop", "jax"))


@settings(max_examples=10, deadline=None)
@given(problems_with_parameters(networks(min_layers=2, max_layers=4, activations=("tanh",))))
def test_backprop_matches_jax_for_tanh(case):
    problem, params = case
    assert_gradients_agree(problem, params, sources=("backprop", "jax"))
'''


@pytest.mark.slow  # a pytest run with two workers, in fresh processes
def test_a_users_property_suite_passes_under_xdist_sharing_one_disk_cache(tmp_path):
    # Ten examples a property: enough to draw several depths (several compiles, written by
    # both workers); what is tested is the sharing, not the gradients.
    pytest.importorskip("xdist")
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_mine.py").write_text(textwrap.dedent(_USER_SUITE))
    cache = tmp_path / "jax-cache"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "-q", "-W", "error"],
                          cwd=suite, env=_env(GRADLAB_JAX_CACHE=str(cache)), capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "2 passed" in proc.stdout, proc.stdout[-2000:]
    assert any(cache.iterdir())  # both workers wrote their compiles to one folder
    # The suite's own files and pytest's and hypothesis's folders; nothing else.
    written = {p.name for p in suite.iterdir()}
    assert written <= {"test_mine.py", "__pycache__", ".pytest_cache", ".hypothesis"}, written
