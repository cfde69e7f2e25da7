"""The built wheel works anywhere: installed into a fresh environment, run from a folder
outside the checkout, it trains and plots the shipped digits and carries its licences.

The wheel is built from a copy of the sources (so the checkout gets no build/ folder) with
the setuptools of this environment (no build isolation: nothing is downloaded). The fresh
environment borrows this one's dependencies through a .pth line (no jax download) and gets
gradlab itself only from the wheel; the test checks that the gradlab it imports is the
installed copy, not the checkout.
"""

import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

# slow: builds the wheel, installs it into a fresh venv and runs it there.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
#: What a wheel is built from (the rest of the checkout is not part of the package).
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "gradlab")
#: Generous limits for each step, so a hung step fails the test instead of the suite.
STEP_TIMEOUT = 300


def _run(cmd, *, cwd, env=None):
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT)
    assert done.returncode == 0, f"{cmd} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """``(python, gradlab, env, site_packages)`` of a fresh venv holding only the wheel."""
    top = tmp_path_factory.mktemp("wheel")
    # Every step runs without PYTHONPATH: with the checkout on it, pip would find the
    # checkout's gradlab.egg-info (from the editable install) and call the wheel installed.
    env = {k: val for k, val in os.environ.items() if k not in ("PYTHONPATH", "GRADLAB_DATA", "PYTHONHOME")}
    src = top / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, src / name)
    dist = top / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "-q", "-w", str(dist), str(src)], cwd=top, env=env)
    (wheel,) = dist.glob("gradlab-*.whl")

    env_dir = top / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    new_site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         cwd=top, env=env).stdout.strip())
    # A plain path line: its folder joins sys.path, but the .pth files inside it (this
    # environment's editable gradlab among them) are not run.
    here = dict.fromkeys([*site.getsitepackages(), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (new_site / "borrowed-dependencies.pth").write_text("".join(f"{p}\n" for p in here if Path(p).is_dir()))
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
          str(wheel)], cwd=top, env=env)

    env["MPLBACKEND"] = "Agg"
    return python, env_dir / "bin" / "gradlab", env, new_site


@pytest.fixture
def elsewhere(tmp_path):
    """A working folder outside the checkout."""
    assert ROOT not in tmp_path.resolve().parents
    return tmp_path


def test_the_installed_gradlab_is_the_wheel_not_the_checkout(installed, elsewhere):
    python, _, env, new_site = installed
    out = _run([str(python), "-c", "import gradlab; print(gradlab.__file__)"], cwd=elsewhere, env=env).stdout
    where = Path(out.strip()).resolve()
    assert new_site.resolve() in where.parents, where
    assert ROOT not in where.parents


def test_the_wheel_trains_on_the_shipped_digits_from_an_unrelated_folder(installed, elsewhere):
    _, gradlab, env, _ = installed
    done = _run([str(gradlab), "train", "--maxiter", "5", "--json", "--quiet", "--out", "model.npz"],
                cwd=elsewhere, env=env)
    result = json.loads(done.stdout)
    assert result["sizes"] == [64, 25, 10], result
    assert (elsewhere / "model.npz").is_file()


def test_the_wheel_plots_the_shipped_digits_from_an_unrelated_folder(installed, elsewhere):
    _, gradlab, env, _ = installed
    done = _run([str(gradlab), "plot", "digits", "--out", "x.png"], cwd=elsewhere, env=env)
    assert "wrote" in done.stdout
    assert (elsewhere / "x.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_installed_package_carries_the_licence_and_the_datas_provenance(installed, elsewhere):
    python, _, env, new_site = installed
    probe = (
        "import importlib.metadata as m, importlib.resources as r, json\n"
        "d = m.distribution('gradlab')\n"
        "lic = [str(d.locate_file(f)) for f in d.files if f.name == 'LICENSE']\n"
        "readme = r.files('gradlab').joinpath('_data', 'README.md')\n"
        "print(json.dumps({'license': d.metadata['License-Expression'], 'files': lic,\n"
        "                  'readme': str(readme), 'text': readme.read_text(encoding='utf-8')}))\n"
    )
    found = json.loads(_run([str(python), "-c", probe], cwd=elsewhere, env=env).stdout)
    assert found["license"] == "MIT"
    (licence,) = found["files"]
    assert new_site.resolve() in Path(licence).resolve().parents
    text = Path(licence).read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "Copyright (c) 2026 the gradlab authors" in text
    assert new_site.resolve() in Path(found["readme"]).resolve().parents
    assert "Alpaydin" in found["text"] and "CC BY 4.0" in found["text"]
