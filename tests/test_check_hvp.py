"""check(order=2) and gradlab check --order 2: planted bugs in a user's H v, caught and localised.

Each planted bug is a Hessian-vector product a person could write: the R-operator with a
product-rule term forgotten, a block scaled, the bias regularised, a product that is not
symmetric, one that writes into its arguments. The check must fail for the right reason and
name the right layer.
"""

import numpy as np
import pytest

import gradlab
from gradlab.cli import main
from gradlab.sources import rop


def good(problem, params, v):
    return gradlab.hvp(problem, params, v)


def forgot_curvature(problem, params, v):
    # The R-backward pass without e_l g''(z_l) Rz_l.
    return rop.r_pass(problem, params, v, without={("curvature", 2)})


def forgot_output_gprime(problem, params, v):
    return rop.r_pass(problem, params, v, without={("output g'", 3)})


def forgot_delta_Ra(problem, params, v):
    return rop.r_pass(problem, params, v, without={("delta Ra", 2)})


def theta2_doubled(problem, params, v):
    out = gradlab.hvp(problem, params, v)
    out[problem.network.offsets[1]:] *= 2.0
    return out


def bias_regularised(problem, params, v):
    out = gradlab.hvp(problem, params, v)
    lam_m = problem.lam / problem.m
    for block, vb in zip(problem.network.unpack(out), problem.network.unpack(v)):
        block[:, 0] += lam_m * vb[:, 0]
    return out


def one_entry_off(problem, params, v):
    out = gradlab.hvp(problem, params, v)
    out[6] += 1e-3  # Theta1[1, 2]
    return out


def writes_v(problem, params, v):
    out = gradlab.hvp(problem, params, v)
    v[:] = 0.0
    return out


def test_a_correct_product_passes():
    r = gradlab.check(good, order=2)
    assert r.ok and not r.findings
    assert r.info["blame"].startswith("none") and "symmetry u.Hv = v.Hu" in r.comparisons
    assert "no problems found: the Hessian-vector product agrees with every witness" in str(r)


def test_a_missing_second_derivative_term_is_caught_and_localised_to_its_layer():
    r = gradlab.check(forgot_curvature, order=2)
    assert not r.ok and r.kinds == ["missing_term"]
    f = r.findings[0]
    assert f.layer == 1 and f.extra["term"] == "curvature" and f.extra["unit_layer"] == 2
    assert f.extra["blocks"] == {"Theta1": ["Theta1"]}  # only the H[Theta1, Theta1] block carries g''
    assert r.info["blame"] == "your product -- it differs from jax while finite differences agree with it"
    assert "g''(z_k)" in str(r)


@pytest.mark.parametrize("fn, term, layer", [
    (forgot_output_gprime, "output g'", 1),
    (forgot_delta_Ra, "delta Ra", 2),
])
def test_other_forgotten_terms_are_named(fn, term, layer):
    r = gradlab.check(fn, order=2)
    f = r.findings[0]
    assert not r.ok and f.kind == "missing_term" and f.extra["term"] == term and f.layer == layer


def test_a_scaled_block_is_a_constant_factor_in_its_layer():
    r = gradlab.check(theta2_doubled, order=2, lam=0.0)
    factors = [f for f in r.findings if f.kind == "constant_factor"]
    assert not r.ok and [f.layer for f in factors] == [2] and factors[0].extra["factor"] == pytest.approx(2.0)
    assert "asymmetric" in r.kinds  # doubling one block's rows breaks the symmetry of H


def test_a_regularised_bias_is_found_by_switching_lambda_off():
    r = gradlab.check(bias_regularised, order=2)
    assert not r.ok and set(r.kinds) == {"regularisation"}
    assert [f.cause for f in r.findings] == ["bias regularised", "bias regularised"]
    assert all(f.columns == [0] for f in r.findings)


def no_regularisation_in_theta2(problem, params, v):
    out = gradlab.hvp(problem, params, v)
    out_2, v_2 = problem.network.unpack(out)[1], problem.network.unpack(v)[1]
    out_2[:, 1:] -= problem.lam / problem.m * v_2[:, 1:]
    return out


def forgot_curvature_and_bias_regularised(problem, params, v):
    out = forgot_curvature(problem, params, v)
    for block, vb in zip(problem.network.unpack(out), problem.network.unpack(v)):
        block[:, 0] += problem.lam / problem.m * vb[:, 0]
    return out


def test_a_layer_without_its_regularisation_term_is_said_so():
    r = gradlab.check(no_regularisation_in_theta2, order=2)
    assert not r.ok and [(f.kind, f.layer, f.cause) for f in r.findings] == [
        ("regularisation", 2, "regularisation factor 0 x lam/m: no regularisation at all")]
    assert "right at lambda = 0 and wrong at lambda = 1" in r.findings[0].sentence


def test_a_scaled_block_with_lambda_on_is_not_blamed_on_the_regularisation():
    # 2 x (data term + penalty): the penalty's part is doubled too, but the slip is the factor,
    # found at lambda = 0; the layer is not "right at lambda = 0".
    r = gradlab.check(theta2_doubled, order=2)
    assert not r.ok and "regularisation" not in r.kinds, str(r)
    assert [f.layer for f in r.findings if f.kind == "constant_factor"] == [2]


def test_a_second_slip_in_the_penalty_of_a_wrong_layer_says_lambda_0_is_wrong_too():
    r = gradlab.check(forgot_curvature_and_bias_regularised, order=2)
    assert "missing_term" in r.kinds
    reg = {f.layer: f for f in r.findings if f.kind == "regularisation"}
    assert set(reg) == {1, 2} and all(f.cause == "bias regularised" for f in reg.values())
    assert reg[1].sentence.startswith("besides the error at lambda = 0, Theta1's regularisation term in H v")
    assert "right at lambda = 0" not in reg[1].sentence
    assert "right at lambda = 0 and wrong at lambda = 1" in reg[2].sentence


def test_one_wrong_entry_is_localised_to_its_row_and_column():
    r = gradlab.check(one_entry_off, order=2, lam=0.0)
    assert not r.ok
    f = next(f for f in r.findings if f.layer is not None)
    assert f.layer == 1 and f.rows == [1] and f.columns == [2]
    assert f.values[0]["index"] == 6


def test_writing_into_v_is_reported():
    r = gradlab.check(writes_v, order=2)
    assert not r.ok and "input_mutation" in r.kinds
    assert next(f for f in r.findings if f.kind == "input_mutation").extra["argument"] == "v"


def test_relu_and_tanh_networks_are_checked_too():
    for act in ("tanh", "relu"):
        assert gradlab.check(good, gradlab.Network((3, 5, 3), act), order=2, against=("backprop", "numeric")).ok
    r = gradlab.check(forgot_curvature, gradlab.Network((3, 5, 3), "tanh"), order=2, against=("backprop",))
    assert r.kinds == ["missing_term"]


@pytest.mark.parametrize("kwargs, match", [
    (dict(order=3), r"order must be 1 \(a gradient function\) or 2"),
    (dict(order=2, mode="fast"), r"order must be 1 with signature, call, cost_fn, cost_call, labels, unroll, problem, params, own_cost or mode"),
    (dict(order=2, against=("numeric-forward",)), r"against must be distinct source names from 'jax'"),
    (dict(order=2, lam=-1.0), r"lam must be a finite real number >= 0"),
])
def test_bad_input_names_the_argument(kwargs, match):
    with pytest.raises(gradlab.GradlabError, match=match):
        gradlab.check(good, **kwargs)


def test_a_function_of_two_arguments_is_refused_for_order_2():
    with pytest.raises(gradlab.GradlabError, match=r"hvp_fn must take 3 positional arguments \(problem, params, v\)"):
        gradlab.check(lambda problem, params: params, order=2)


# ----------------------------------------------------------------------- the CLI


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text(
        "import gradlab\nfrom gradlab.sources import rop\n\n"
        "def good(problem, params, v):\n    return gradlab.hvp(problem, params, v)\n\n"
        "def forgot(problem, params, v):\n    return rop.r_pass(problem, params, v, without={('curvature', 2)})\n")
    return path


def test_cli_check_order_2_pass_and_fail(user_file, capsys):
    assert main(["check", "--order", "2", f"{user_file}:good"]) == 0
    assert "verdict: PASS" in capsys.readouterr().out
    assert main(["check", "--order", "2", f"{user_file}:forgot"]) == 1
    out = capsys.readouterr().out
    assert "[missing_term] Theta1 (missing curvature at layer 2)" in out and "verdict: FAIL" in out


@pytest.mark.parametrize("extra, match", [
    (["--mode", "fast"], "--mode applies to gradient checks, not to --order 2"),
    (["--shrink", "--signature", "seed"], "--signature, --shrink apply to gradient checks"),
    (["--order", "0"], "order must be 1 (a gradient function) or 2"),
])
def test_cli_check_usage_errors_are_one_line_and_exit_2(user_file, extra, match, capsys):
    argv = ["check", f"{user_file}:good", *extra]
    if "--order" not in extra:
        argv += ["--order", "2"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and match in err


def test_a_kinked_numeric_witness_is_reported_not_silently_passed(monkeypatch):
    import dataclasses

    from gradlab.sources import second_order

    real = second_order.HVP_SOURCES["numeric"]

    def kinked(problem, params, v):
        est = real.estimate(problem, params, v)
        return dataclasses.replace(est, kink=np.ones_like(est.kink))

    monkeypatch.setitem(second_order.HVP_SOURCES, "numeric", dataclasses.replace(real, estimate=kinked))
    r = gradlab.check(good, order=2, against=("numeric",))
    assert r.kinds == ["numeric_problem"] and "nothing judged its values" in r.findings[0].sentence
    assert "yours vs numeric" not in r.comparisons
