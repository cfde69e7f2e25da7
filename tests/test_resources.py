"""Resource guards: work that would not fit in memory or would take too long is refused up front.

No test here allocates anything large: every refusal happens before the allocation, and
the memory limit is set small with GRADLAB_MEMORY_LIMIT (or the timing is replaced) so
that modest problems trip the guards.
"""

import os
import time

import numpy as np
import pytest

import gradlab
from gradlab import _resources
from gradlab.cli import main
from gradlab.steps import step_curve

HUGE = ["--sizes", "100000,100000,10", "--examples", "60000"]

#: A refusal must come before any allocation: well under this many seconds (making the
#: arrays it describes would take minutes, if they fitted at all).
REFUSAL_SECONDS = 0.5


def _one_line_error(capsys) -> str:
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("gradlab: error: ") and err.count("\n") == 1, err
    return err


# ------------------------------------------------------------------------------ memory


@pytest.mark.parametrize("command", ["compare", "explain", "steps"])
def test_cli_refuses_a_network_too_big_for_memory_at_once_with_its_size(command, capsys):
    t0 = time.perf_counter()
    assert main([command, *HUGE]) == 2
    assert time.perf_counter() - t0 < REFUSAL_SECONDS
    err = _one_line_error(capsys)
    assert "sizes=(100000, 100000, 10) with m=60000 examples needs about" in err
    assert "GiB (parameters and gradients" in err and "inputs 44.7 GiB" not in err
    assert "available" in err and "GRADLAB_MEMORY_LIMIT" in err


def test_cli_check_refuses_a_network_too_big_for_memory(tmp_path, capsys):
    target = tmp_path / "mine.py"
    target.write_text("import gradlab\ndef grad(problem, params):\n    return gradlab.gradient(problem, params)\n")
    assert main(["check", f"{target}:grad", *HUGE]) == 2
    assert "with m=60000 examples needs about" in _one_line_error(capsys)


def test_cli_train_refuses_hidden_layers_too_big_for_memory(capsys):
    assert main(["train", "--hidden", "100000000", "--json"]) == 2
    assert "needs about" in _one_line_error(capsys)


def test_estimate_counts_parameters_inputs_and_activations():
    est = _resources.problem_memory((100000, 100000, 10), 60000)
    P = 100001 * 100000 + 100001 * 10
    assert est.parts["parameters and gradients"] == _resources.PARAM_VECTORS * 8 * P
    assert est.parts["inputs"] == _resources.INPUT_COPIES * 8 * 60000 * 100000
    assert est.parts["activations and deltas"] == _resources.ACTIVATION_COPIES * 8 * 60000 * 100010
    assert est.total == sum(est.parts.values())


def test_jax_adds_its_device_copies():
    plain = _resources.problem_memory((400, 25, 10), 5000)
    with_jax = _resources.problem_memory((400, 25, 10), 5000, jax=True)
    assert with_jax.total - plain.total == with_jax.parts["jax's copies"] > 8 * 5000 * 410


@pytest.mark.parametrize("call", [
    pytest.param(lambda: gradlab.random_init(gradlab.Network((2000, 1000, 10))), id="random_init"),
    pytest.param(lambda: gradlab.debug_init(gradlab.Network((2000, 1000, 10))), id="debug_init"),
    pytest.param(lambda: gradlab.debug_problem((2000, 10), 1000), id="debug_problem"),
    pytest.param(lambda: gradlab.Problem((50, 3), np.zeros((5000, 50)), np.zeros(5000, int)), id="Problem"),
    pytest.param(lambda: gradlab.train(np.zeros((5000, 50)), np.arange(5000) % 2, progress=False), id="train"),
    pytest.param(lambda: gradlab.check(gradlab.gradient, (200, 100, 10), examples=2000), id="check"),
])
def test_library_refuses_work_above_the_memory_limit(call, monkeypatch):
    # 1 MiB: every case above needs a few MiB.
    monkeypatch.setenv("GRADLAB_MEMORY_LIMIT", "1M")
    with pytest.raises(gradlab.GradlabError, match=r"needs about [0-9.]+ MiB \(.*\); the limit is 1 MiB \(GRADLAB_MEMORY_LIMIT=1M\)"):
        call()


def test_jax_source_refuses_its_device_copies_above_the_limit(monkeypatch):
    p = gradlab.Problem((30, 3), np.zeros((900, 30)), np.arange(900) % 3)  # 216 KiB of inputs
    params = gradlab.debug_init(p.network)
    # The numpy sources fit, jax's extra copies do not.
    limit = _resources.problem_memory((30, 3), 900).total + 1
    assert _resources.problem_memory((30, 3), 900, jax=True).total > limit
    monkeypatch.setenv("GRADLAB_MEMORY_LIMIT", str(limit))
    gradlab.gradient(p, params, "backprop")
    with pytest.raises(gradlab.GradlabError, match=r"jax's copies"):
        gradlab.gradient(p, params, "jax")


def test_small_problems_pass_under_a_small_limit(monkeypatch):
    monkeypatch.setenv("GRADLAB_MEMORY_LIMIT", "1M")
    p = gradlab.debug_problem()
    assert gradlab.compare(p, gradlab.debug_init(p.network)).ok


@pytest.mark.parametrize("text, expected", [
    ("1048576", 2**20), ("64K", 64 * 2**10), ("1.5G", int(1.5 * 2**30)), ("2t", 2 * 2**40), ("8GiB", 8 * 2**30),
])
def test_memory_limit_accepts_bytes_and_binary_suffixes(text, expected, monkeypatch):
    monkeypatch.setenv("GRADLAB_MEMORY_LIMIT", text)
    assert _resources.available_memory()[0] == expected


@pytest.mark.parametrize("text", ["lots", "-5G", "0", "12X", "1e999", "G"])
def test_bad_memory_limit_is_a_clear_error(text, monkeypatch):
    monkeypatch.setenv("GRADLAB_MEMORY_LIMIT", text)
    with pytest.raises(gradlab.GradlabError, match=r"GRADLAB_MEMORY_LIMIT must be a positive number of bytes.*got GRADLAB_MEMORY_LIMIT="):
        gradlab.debug_problem()


def test_available_memory_is_a_fraction_of_the_smallest_measure(monkeypatch):
    monkeypatch.delenv("GRADLAB_MEMORY_LIMIT", raising=False)
    monkeypatch.setattr(_resources, "cgroup_available", lambda: 3 * 2**30)
    monkeypatch.setattr(_resources, "meminfo_available", lambda: 5 * 2**30)
    monkeypatch.setattr(_resources, "physical_memory", lambda: 8 * 2**30)
    limit, where = _resources.available_memory()
    assert limit == int(_resources.MEMORY_FRACTION * 3 * 2**30)
    assert "this machine has 3 GiB available" in where


def test_no_readable_measure_means_no_memory_guard(monkeypatch):
    monkeypatch.delenv("GRADLAB_MEMORY_LIMIT", raising=False)
    for name in ("cgroup_available", "meminfo_available", "physical_memory"):
        monkeypatch.setattr(_resources, name, lambda: None)
    _resources.require_memory(_resources.problem_memory((10**6, 10**6, 10), 10**6))


def test_cgroup_v2_limit_is_read_minus_current_usage(tmp_path, monkeypatch):
    (tmp_path / "memory.max").write_text("1073741824\n")
    (tmp_path / "memory.current").write_text("268435456\n")
    monkeypatch.setattr(_resources, "cgroup_paths", lambda: {"": "/"})
    assert _resources.cgroup_available(str(tmp_path)) == 2**30 - 2**28


def test_cgroup_v1_limit_is_read_minus_current_usage(tmp_path, monkeypatch):
    group = tmp_path / "memory" / "job"
    group.mkdir(parents=True)
    (group / "memory.limit_in_bytes").write_text("2147483648\n")
    (group / "memory.usage_in_bytes").write_text("1073741824\n")
    monkeypatch.setattr(_resources, "cgroup_paths", lambda: {"memory": "/job"})
    assert _resources.cgroup_available(str(tmp_path)) == 2**30


def test_the_cgroup_paths_are_read_once_per_process(monkeypatch):
    opened = []
    real_open = open

    def counting_open(path, *args, **kwargs):
        opened.append(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(_resources, "open", counting_open, raising=False)  # shadows the builtin
    monkeypatch.setattr(_resources, "_cgroup_paths_seen", None)
    first = _resources.cgroup_paths()
    first["memory"] = "changed by the caller"
    second = _resources.cgroup_paths()
    assert opened == ["/proc/self/cgroup"]
    assert second.get("memory") != "changed by the caller"  # each caller gets its own copy
    # A forked child (another pid) reads its own.
    monkeypatch.setattr(_resources, "_cgroup_paths_seen", (os.getpid() + 1, {"": "/parent"}))
    assert _resources.cgroup_paths() == second
    assert opened == ["/proc/self/cgroup"] * 2


def test_unlimited_cgroup_v2_is_no_limit(tmp_path):
    (tmp_path / "memory.max").write_text("max\n")
    assert _resources.read_int(str(tmp_path / "memory.max")) is None


@pytest.mark.parametrize("sizes", [(10**30, 3), (3, 10**10, 10**10)])
def test_network_too_large_to_index_is_refused_not_an_overflow(sizes):
    with pytest.raises(gradlab.GradlabError, match=r"sizes must be layer sizes whose parameter count .* fits in a numpy array"):
        gradlab.Network(sizes)


def test_random_init_of_a_network_beyond_memory_is_refused_not_an_overflow():
    net = gradlab.Network((10**9, 10**9))  # 1e18 parameters: indexable, never allocatable
    with pytest.raises(gradlab.GradlabError, match=r"sizes=\(1000000000, 1000000000\) needs about [0-9.,]+ EiB \(parameters"):
        gradlab.random_init(net)


# ------------------------------------------------------------------------------ time


@pytest.fixture
def slow_cost(monkeypatch):
    """Every cost evaluation 'takes' a second, and nothing counts as obviously small."""
    monkeypatch.setattr(_resources, "seconds_per_cost", lambda problem, params: 1.0)
    monkeypatch.setattr(_resources, "EVALUATION_OVERHEAD", 1.0)


NUMERIC_SOURCES = ["numeric", "numeric-forward", "numeric-complex", "numeric-richardson"]


@pytest.mark.parametrize("source", NUMERIC_SOURCES)
def test_compare_refuses_slow_numeric_sources_with_the_estimated_time(source, slow_cost):
    p = gradlab.debug_problem()
    with pytest.raises(gradlab.GradlabError, match=rf"comparing with {source} takes [0-9,]+ cost evaluations .*P=38 .*1 s per evaluation, timed.*above the limit of 60 s; pass force=True"):
        gradlab.compare(p, gradlab.debug_init(p.network), ("backprop", source))


@pytest.mark.parametrize("source", NUMERIC_SOURCES)
def test_compare_force_runs_slow_numeric_sources(source, slow_cost):
    p = gradlab.debug_problem()
    assert gradlab.compare(p, gradlab.debug_init(p.network), ("backprop", source), force=True).ok


def test_compare_of_exact_sources_is_never_timed(slow_cost):
    p = gradlab.debug_problem()
    assert gradlab.compare(p, gradlab.debug_init(p.network), ("backprop", "jax")).ok


def test_numeric_gradient_and_the_registry_refuse_slow_work(slow_cost):
    p = gradlab.debug_problem()
    theta = gradlab.debug_init(p.network)
    with pytest.raises(gradlab.GradlabError, match=r"a numeric gradient \(central differences, with its error estimate\)"):
        gradlab.numeric_gradient(p, theta)
    with pytest.raises(gradlab.GradlabError, match=r"a numeric gradient \(complex differences\) takes 153 cost"):
        gradlab.gradient(p, theta, "numeric-complex")
    assert gradlab.numeric_gradient(p, theta, force=True).gradient.shape == (38,)


def test_steps_refuses_a_slow_curve_and_runs_when_forced(slow_cost):
    p = gradlab.debug_problem()
    theta = gradlab.debug_init(p.network)
    with pytest.raises(gradlab.GradlabError, match=r"the step curve over 2 steps takes 989 cost evaluations"):
        step_curve(p, theta, steps=[1e-3, 1e-6])
    assert step_curve(p, theta, steps=[1e-3, 1e-6], force=True).errors["central"].shape == (2,)


def test_check_full_mode_refuses_slow_finite_differences_and_auto_picks_fast(slow_cost):
    with pytest.raises(gradlab.GradlabError, match=r"a numeric gradient \(central differences"):
        gradlab.check(gradlab.gradient, (3, 5, 3), mode="full")
    assert gradlab.check(gradlab.gradient, (3, 5, 3), mode="full", force=True).ok
    report = gradlab.check(gradlab.gradient, (3, 5, 3))
    assert report.ok and report.info["mode"] == "fast"


def test_trainer_refuses_slow_numeric_training_and_runs_when_forced(slow_cost):
    X, y = np.eye(4), np.arange(4) % 2
    with pytest.raises(gradlab.GradlabError, match=r"training with grad_source='numeric-forward' for maxiter=3"):
        gradlab.train(X, y, hidden=2, grad_source="numeric-forward", maxiter=3, progress=False)
    r = gradlab.train(X, y, hidden=2, grad_source="numeric-forward", maxiter=3, force=True, progress=False)
    assert r.source == "numeric-forward"


@pytest.mark.parametrize("argv", [
    ["compare"],
    ["steps"],
    ["compare", "--sources", "backprop,numeric-richardson"],
])
def test_cli_refuses_slow_numeric_work_in_one_line_and_runs_with_force(argv, slow_cost, capsys):
    assert main(argv) == 2
    assert "pass force=True (--force)" in _one_line_error(capsys)
    assert main([*argv, "--force"]) == 0


def test_default_compare_times_nothing(monkeypatch):
    def timed(problem, params):
        raise AssertionError("the default compare must not time a cost evaluation")

    monkeypatch.setattr(_resources, "seconds_per_cost", timed)
    assert main(["compare"]) == 0


def test_huge_work_is_refused_by_the_optimistic_model_without_timing(monkeypatch):
    def timed(problem, params):
        raise AssertionError("work over the limit even at the optimistic rate is not timed")

    monkeypatch.setattr(_resources, "seconds_per_cost", timed)
    X, y = np.zeros((2000, 1000)), np.arange(2000) % 10  # 16 MB; 4P = 4e6 evaluations of 4e9 flops
    p = gradlab.Problem((1000, 1000, 10), X, y)
    with pytest.raises(gradlab.GradlabError, match=r"at least .* even at 1e\+13 flop/s"):
        gradlab.numeric_gradient(p, gradlab.debug_init(p.network))


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="no /proc here")
def test_resident_memory_reads_a_process_and_grows_with_what_it_holds():
    before = _resources.resident_memory(os.getpid())
    held = np.ones(2**22)  # 32 MiB, every page written
    after = _resources.resident_memory(os.getpid())
    assert before > 0 and after - before > 24 * 2**20
    del held
    assert _resources.resident_memory(2**22 + 12345) is None  # beyond Linux's largest pid
