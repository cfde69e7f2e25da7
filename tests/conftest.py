"""Shared test configuration: hypothesis profiles.

- ``ci`` (the default): >= 200 examples per property, derandomised, so a commit that
  passes passes again -- CI is reproducible and never fails by the luck of the draw.
- ``dev``: 50 random examples per property, for a quick loop.
- ``explore``: 1,000 random examples per property, to hunt for new counter-examples
  (``GRADLAB_HYPOTHESIS_PROFILE=explore python -m pytest``); what it finds becomes a
  plain regression test.
"""

import os
import signal
import sys

from hypothesis import HealthCheck, settings

# Bytecode. An image or CI runner may set PYTHONDONTWRITEBYTECODE; then each of the suite's
# ~250 Python processes (the isolated workers for user code, the command-line runs, the
# examples) compiles gradlab's modules from source again, about 0.1 s of CPU each, and every
# run re-does pytest's assertion rewriting of every test module. The suite writes ordinary
# __pycache__ folders (ignored by git), so that one compile serves the rest.
sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

# Ctrl-C. A shell without job control (a script, some CI runners) starts a background
# command (`python -m pytest ... &`) with SIGINT ignored, and every process it starts
# inherits that -- gradlab rightly leaves an ignored signal ignored, so the tests that press
# Ctrl-C on a training run (test_interrupt.py, test_progress.py, test_hostile_more.py) would
# see it run to the end. The suite takes SIGINT back as a terminal would give it: a Python
# handler here, which a started program gets as the default.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# jit compilation on first sight of a network shape makes single examples slow, so no
# per-example deadline.
_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.register_profile("ci", max_examples=200, derandomize=True, **_COMMON)
settings.register_profile("dev", max_examples=50, **_COMMON)
settings.register_profile("explore", max_examples=1000, **_COMMON)
settings.load_profile(os.environ.get("GRADLAB_HYPOTHESIS_PROFILE", "ci"))


import pytest  # noqa: E402

# Hypothesis mixes literal constants from the project's own modules that are loaded (in
# sys.modules) into its draws, so what a derandomised property draws depends on which of
# gradlab's modules earlier tests happened to import -- under pytest-xdist, on how the tests
# were shared out. Every module loaded up front keeps the draws the same whatever the order.
# (Modules of user code that tests write and load still join as they load.)
import importlib  # noqa: E402
import pkgutil  # noqa: E402

import gradlab  # noqa: E402

for _module in pkgutil.walk_packages(gradlab.__path__, "gradlab."):
    if not _module.name.endswith(".__main__"):  # that one runs the command line
        importlib.import_module(_module.name)

#: jax's event for one XLA compile (jax._src.dispatch.BACKEND_COMPILE_EVENT), and the
#: name jax gives gradlab's compiled cost in it.
_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_COST_FUNCTION = "jit(gradlab_cost)"


@pytest.fixture(scope="session")
def jax_compiles():
    """A list that grows by one entry (its seconds) whenever jax compiles gradlab's cost.

    Counted by jax's own monitoring events, not by gradlab.
    """
    import jax.monitoring

    from gradlab.sources import autodiff

    autodiff.ready()
    seen = []

    def listen(event, duration, **kw):
        if event == _COMPILE_EVENT and kw.get("fun_name") == _COST_FUNCTION:
            seen.append(duration)

    jax.monitoring.register_event_duration_secs_listener(listen)
    return seen


@pytest.fixture(autouse=True)
def _os_exit_tripwire(monkeypatch):
    """No test may end the test process through os._exit.

    Tests hand gradlab user code that calls os._exit(0), which gradlab must turn into an
    error. Should that guard ever break, the call would end pytest at once with status 0 --
    CI would read a pass. Here it raises instead, and the test fails. A process forked by a
    test still exits for real.
    """
    real, pid = os._exit, os.getpid()

    def tripwire(status=0):
        if os.getpid() != pid:
            real(status)
        raise AssertionError(f"os._exit({status}) reached the test process")

    monkeypatch.setattr(os, "_exit", tripwire)
