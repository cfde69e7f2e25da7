"""gradlab.check at the user's own point: their data and weights, in Python (problem=,
params=) and on the command line (--data, --weights), every experiment derived from it."""

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import scipy.io

import gradlab
from gradlab.check import load_weights, user_point
from gradlab.cli import main

import ports
from broken import backprop

HERE = Path(__file__).parent
CALL = "backprop(params, sizes, X, y, lam)"
SIZES = (4, 5, 3)


def _data(m=500, seed=3, K=3):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(m, SIZES[0])), rng.permutation(np.arange(m) % K)


def test_a_gradient_wrong_only_past_the_100th_example_is_caught_at_the_users_data():
    fn = ports.layers_port("after100")
    assert gradlab.check(fn, SIZES, call=CALL).ok  # gradlab's own point: 5 examples
    X, y = _data()
    report = gradlab.check(fn, call=CALL, problem=gradlab.Problem(SIZES, X, y, 1.0))
    assert not report.ok and report.info["examples"] == 500 and report.info["data"] == "given"
    assert {f.kind for f in report.findings} == {"examples"}, str(report)
    f = report.findings[0]
    assert f.extra["right_up_to"] == 100 and "right on the first 100 examples" in f.sentence
    assert "wrong on the first 101" in f.sentence


def test_every_experiment_is_derived_from_the_users_point():
    X, y = _data(m=40)
    at_zero = gradlab.Problem(SIZES, X, y, 0.0)
    # lambda as the user's problem has it: a bias-regularisation bug cannot show at lambda = 0 ...
    assert gradlab.check(backprop(reg_bias=True), problem=at_zero).ok
    # ... and lam= overrides it, with the lambda = 0 experiment run on the same data.
    report = gradlab.check(backprop(reg_bias=True), problem=at_zero, lam=2.0)
    assert {(f.kind, f.cause) for f in report.findings} == {("regularisation", "bias regularised")}
    assert report.info["lam"] == 2.0 and report.info["examples"] == 40
    # The one-example experiment reads the user's first example: the missing g' is named there.
    report = gradlab.check(backprop(gprime_missing_at=2), problem=at_zero)
    assert {(f.kind, f.layer, f.cause) for f in report.findings} == {("one_layer", 1, "missing g'(z_2)")}


@pytest.mark.parametrize("given", ["flat", "column", "matrices", "fortran"])
def test_the_users_weights_are_taken_in_every_accepted_form(given):
    net = gradlab.Network(SIZES)
    w = gradlab.random_init(net, 11) * 3.0
    form = {"flat": (w, "C"), "column": (w.reshape(-1, 1), "C"), "matrices": (net.unpack(w), "C"),
            "fortran": (np.concatenate([t.ravel(order="F") for t in net.unpack(w)]), "F")}
    params, unroll = form[given]
    seen = []

    def records(problem, params):
        seen.append(np.array(params))
        return gradlab.gradient(problem, params)

    call = "records(problem, params)" if unroll == "C" else None
    if unroll == "F":  # a function reading params column-major, as Octave's reshape does
        def records_f(Theta1, Theta2, problem):
            seen.append(net.pack([Theta1, Theta2]))
            return net.unpack(gradlab.gradient(problem, seen[-1]))  # matrices: the same in either order

        report = gradlab.check(records_f, SIZES, call="records_f(Theta1, Theta2, problem)", params=params, unroll="F")
    else:
        report = gradlab.check(records, SIZES, call=call, params=params)
    assert report.ok and report.info["weights"] == "given", str(report)
    assert np.array_equal(seen[0], w)


@pytest.mark.parametrize("kw, pattern", [
    ({"params": np.zeros(10)}, r"params must be 38 weights for sizes \(3, 5, 3\) .*got shape \(10,\)"),
    ({"params": [np.zeros((5, 4)), np.zeros((2, 6))]}, r"params: matrices for sizes \(3, 5, 2\); the check's sizes"),
    ({"params": [np.zeros((5, 4)), np.zeros((3, 7))]}, r"Theta2 has 7 columns, but Theta1 has 5 rows"),
    ({"params": np.full(38, np.nan)}, r"params"),
    ({"params": np.zeros(38), "weight_scale": 2.0}, r"weight_scale multiplies gradlab's random weights"),
    ({"problem": gradlab.Problem((3, 5, 3), np.zeros((4, 3)), [0, 1, 2, 0]), "examples": 3},
     r"examples: the problem holds its own 4 examples"),
    ({"problem": gradlab.Problem((3, 5, 3), np.zeros((4, 3)), [0, 1, 2, 0]), "sizes": (3, 4, 3)},
     r"sizes must match the problem's network \(3, 5, 3\)"),
    ({"problem": "data.mat"}, r"problem must be a gradlab.Problem"),
])
def test_the_users_point_is_validated_with_one_line_errors(kw, pattern):
    sizes = kw.pop("sizes", (3, 5, 3))
    with pytest.raises(gradlab.GradlabError, match=pattern) as err:
        gradlab.check(backprop(), sizes, **kw)
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------ weights files


@pytest.fixture
def weights(tmp_path):
    net = gradlab.Network(SIZES)
    w = gradlab.random_init(net, 7)
    T1, T2 = net.unpack(w)
    scipy.io.savemat(tmp_path / "w.mat", {"Theta1": T1, "Theta2": T2})
    np.savez(tmp_path / "w.npz", Theta1=T1, Theta2=T2)
    np.savez(tmp_path / "flat.npz", params=np.concatenate([T1.ravel(order="F"), T2.ravel(order="F")]))
    np.savez(tmp_path / "gap.npz", Theta1=T1, Theta3=T2)
    return tmp_path, net, w


@pytest.mark.parametrize("name", ["w.mat", "w.npz"])
def test_weights_files_with_theta_matrices_give_sizes_and_matrices(weights, name):
    folder, net, w = weights
    sizes, mats = load_weights(folder / name)
    assert sizes == SIZES and np.array_equal(net.pack(mats), w)


def test_a_flat_params_file_is_read_in_the_chosen_order_and_needs_sizes(weights):
    folder, net, w = weights
    _, _, params = user_point(SIZES, weights=folder / "flat.npz", unroll="F")
    assert np.array_equal(params, w)
    with pytest.raises(gradlab.GradlabError, match="hold a flat params; give the layer sizes"):
        user_point(weights=folder / "flat.npz")


def test_a_gradlab_model_file_gives_its_weights(tmp_path):
    X, y = _data(m=60)
    model = gradlab.train(X, y, hidden=(5,), maxiter=3, progress=False)
    model.save(tmp_path / "model.npz")
    sizes, mats = load_weights(tmp_path / "model.npz")
    assert sizes == SIZES and np.array_equal(model.network.pack(mats), model.params)


@pytest.mark.parametrize("name, pattern", [
    ("gap.npz", r"holds Theta1, Theta3; the matrices must be Theta1, Theta2, ... with none missing"),
    ("nothing.txt", r"neither a \.mat file nor an \.npz archive"),
    ("missing.mat", r"weights: no such file"),
])
def test_bad_weights_files_are_one_line_errors(weights, name, pattern):
    folder, _, _ = weights
    (folder / "nothing.txt").write_text("1 2 3\n")
    with pytest.raises(gradlab.GradlabError, match=pattern):
        load_weights(folder / name)


# ------------------------------------------------------------------ the command line


@pytest.fixture
def course(tmp_path):
    """A .mat file in the course's layout: labels 1..K, K meaning class 0."""
    X, y = _data(m=300)
    scipy.io.savemat(tmp_path / "data.mat", {"X": X, "y": np.where(y == 0, 3, y).reshape(-1, 1).astype(float)})
    scipy.io.savemat(tmp_path / "data0.mat", {"X": X, "y": y.reshape(-1, 1).astype(float)})  # labels 0..K-1
    net = gradlab.Network(SIZES)
    T1, T2 = net.unpack(gradlab.random_init(net, 5))
    scipy.io.savemat(tmp_path / "weights.mat", {"Theta1": T1, "Theta2": T2})
    (tmp_path / "student.py").write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(HERE)!r})
        import numpy as np
        import os
        import ports
        octave = ports.octave_port()
        SEEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seen.npy")
        def records(nn_params, a, b, c, X, y, lam):
            if not os.path.exists(SEEN):  # the labels of the first call, where the test can read them
                np.save(SEEN, np.array(y))
            return octave(nn_params, a, b, c, X, y, lam)
        late = ports.layers_port("after100")
    """))
    return tmp_path


def test_cli_checks_at_the_users_data_and_weights_with_the_files_own_labels(course, capsys):
    argv = ["check", f"{course}/student.py:records", "--signature", "seed", "--labels", "1", "--unroll", "F",
            "--data", f"{course}/data.mat", "--weights", f"{course}/weights.mat"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "m=300" in out and f"at your point: data {course}/data.mat, weights {course}/weights.mat" in out
    seen = np.load(course / "seen.npy")  # written by the function, in the process that ran it
    file_y = scipy.io.loadmat(course / "data.mat")["y"].ravel()
    assert np.array_equal(seen, file_y)  # the function got the file's labels 1..3, 3 and all


@pytest.mark.slow  # a second or more (the quick loop leaves it out)
def test_cli_a_bug_past_the_100th_example_is_caught_at_the_users_data(course, capsys):
    target = f"{course}/student.py:late"
    assert main(["check", target, "--call", CALL, "--sizes", "4,5,3"]) == 0
    capsys.readouterr()
    assert main(["check", target, "--call", CALL, "--sizes", "4,5,3", "--data", f"{course}/data0.mat", "--json"]) == 1
    d = json.loads(capsys.readouterr().out)
    assert d["examples"] == 300 and {f["kind"] for f in d["findings"]} == {"examples"}
    assert main(["check", target, "--call", CALL, "--sizes", "4,5,3", "--data", f"{course}/data0.mat",
                 "--examples", "100"]) == 0
    capsys.readouterr()


@pytest.mark.parametrize("extra, pattern", [
    (["--data", "{d}/data.mat"], r"data needs the layer sizes"),
    (["--data", "{d}/data.mat", "--sizes", "5,5,3"], r"data data\.mat must have 5 features"),
    (["--data", "{d}/data0.mat", "--sizes", "4,5,2"], r"labels must lie in 0..K-1 for K = sizes\[-1\] = 2"),
    (["--data", "{d}/data.mat", "--sizes", "4,5,3"], r"got labels 1..3 \(labels 1..K: pass labels=1, --labels 1\)"),
    (["--weights", "{d}/weights.mat", "--sizes", "4,6,3"], r"weights .* are for sizes \(4, 5, 3\)"),
    (["--data-labels", "{d}/data.mat"], r"--data-labels goes with --data"),
])
def test_cli_point_errors_are_one_line_exit_2(course, capsys, extra, pattern):
    import re

    argv = ["check", f"{course}/student.py:late", "--call", CALL] + [a.format(d=course) for a in extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(pattern, err), err


def test_shrinking_at_the_users_data_keeps_the_data_in_the_reproducer(course):
    from gradlab.check import load_target

    target = f"{course}/student.py:late"
    report = gradlab.shrink(load_target(target), call=CALL, data=f"{course}/data0.mat", sizes=SIZES, target=target,
                            max_examples=25)
    r = report.reproducer
    assert r["examples"] == 101 and r["sizes"][0] == 4 and r["sizes"][-1] == 3, r
    assert f"--data {course}/data0.mat" in r["command"] and f"--call '{CALL}'" in r["command"]
    assert f"data='{course}/data0.mat'" in r["pytest"] and "problem=problem" in r["pytest"]
    namespace = {}
    exec(r["pytest"], namespace)
    with pytest.raises(AssertionError, match="right on the first 100 examples"):
        namespace["test_late_smallest_failing_case"]()
