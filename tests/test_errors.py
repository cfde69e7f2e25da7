"""Bad input: each case raises a GradlabError naming the argument and the value; the CLI
turns it into one line on stderr and exit status 2."""

import numpy as np
import pytest

import gradlab
from gradlab.cli import main

NET = gradlab.Network((3, 5, 3))
GOOD_X = np.ones((4, 3))
GOOD_Y = np.array([0, 1, 2, 0])


def _params(n=NET.n_params):
    return np.zeros(n)


CASES = [
    ("sizes-one-entry", lambda: gradlab.Network((3,)), r"sizes.*at least two.*sizes=\(3,\)"),
    ("sizes-zero", lambda: gradlab.Network((3, 0, 3)), r"sizes=\(3, 0, 3\)"),
    ("sizes-negative", lambda: gradlab.Network((3, -2, 3)), r"sizes=\(3, -2, 3\)"),
    ("sizes-float", lambda: gradlab.Network((3, 2.5, 3)), r"sizes=\(3, 2.5, 3\)"),
    ("sizes-string", lambda: gradlab.Network("353"), r"sizes='353'"),
    ("params-length", lambda: gradlab.cost(gradlab.Problem(NET, GOOD_X, GOOD_Y), _params(37)), r"params.*length 38.*length 37"),
    ("params-nan", lambda: gradlab.cost(gradlab.Problem(NET, GOOD_X, GOOD_Y), np.r_[np.nan, _params(37)]), r"params\[0\]=nan"),
    ("params-2d", lambda: gradlab.gradient(gradlab.Problem(NET, GOOD_X, GOOD_Y), _params().reshape(2, 19)), r"params.*1-D.*\(2, 19\)"),
    ("X-columns", lambda: gradlab.Problem(NET, np.ones((4, 2)), GOOD_Y), r"X must have 3 columns.*\(4, 2\)"),
    ("X-nan", lambda: gradlab.Problem(NET, np.r_[GOOD_X[:3], [[1, np.nan, 1]]], GOOD_Y), r"X\[3, 1\]=nan"),
    ("X-inf", lambda: gradlab.Problem(NET, np.r_[GOOD_X[:3], [[1, 1, np.inf]]], GOOD_Y), r"X\[3, 2\]=inf"),
    ("X-no-rows", lambda: gradlab.Problem(NET, np.ones((0, 3)), np.array([], dtype=int)), r"X must have at least one row.*\(0, 3\)"),
    ("labels-out-of-range", lambda: gradlab.Problem(NET, GOOD_X, [0, 1, 3, 0]), r"y.*0\.\.2.*y\[2\]=3"),
    ("labels-negative", lambda: gradlab.Problem(NET, GOOD_X, [0, -1, 2, 0]), r"y\[1\]=-1"),
    ("labels-not-integers", lambda: gradlab.Problem(NET, GOOD_X, [0, 1.5, 2, 0]), r"y.*integers.*y\[1\]=1.5"),
    ("labels-wrong-length", lambda: gradlab.Problem(NET, GOOD_X, [0, 1]), r"y must be labels of shape \(4,\).*\(2,\)"),
    ("targets-wrong-shape", lambda: gradlab.Problem(NET, GOOD_X, np.zeros((4, 2))), r"y must be.*\(4, 3\).*\(4, 2\)"),
    ("targets-outside-0-1", lambda: gradlab.Problem(NET, GOOD_X, np.full((4, 3), 1.5)), r"\[0, 1\].*y\[0, 0\]=1.5"),
    ("lam-negative", lambda: gradlab.Problem(NET, GOOD_X, GOOD_Y, lam=-1.0), r"lam.*>= 0.*lam=-1.0"),
    ("lam-nan", lambda: gradlab.Problem(NET, GOOD_X, GOOD_Y, lam=float("nan")), r"lam=nan"),
    ("source-unknown", lambda: gradlab.gradient(gradlab.Problem(NET, GOOD_X, GOOD_Y), _params(), "torch"), r"source.*'backprop', 'jax', 'numeric'.*source='torch'"),
    ("compare-one-source", lambda: gradlab.compare(gradlab.Problem(NET, GOOD_X, GOOD_Y), _params(), ("jax",)), r"sources.*at least two"),
    ("problem-not-a-problem", lambda: gradlab.cost("data", _params()), r"problem.*gradlab.Problem.*problem='data'"),
    ("seed-negative", lambda: gradlab.random_init(NET, seed=-1), r"seed.*>= 0.*seed=-1"),
    ("source-bad-output", lambda: gradlab.gradient(gradlab.Problem(NET, GOOD_X, GOOD_Y), _params(), lambda p, t: t[:3]), r"source '<lambda>'.*\(38,\).*\(3,\)"),
]


@pytest.mark.parametrize("call, pattern", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_gradlab_error_naming_the_value(call, pattern):
    with pytest.raises(gradlab.GradlabError, match=pattern):
        call()


def test_gradlab_error_is_a_value_error():
    assert issubclass(gradlab.GradlabError, ValueError)


CLI_CASES = [
    (["compare", "--sizes", "3"], "sizes"),
    (["compare", "--sizes", "3,0,3"], "--sizes must be at least two positive integers; got --sizes 3,0,3"),
    (["compare", "--sizes", "3,-1,3"], "got --sizes 3,-1,3"),
    (["compare", "--sizes", "3,2.5,3"], "3,2.5,3"),
    (["compare", "--lambda", "-1"], "--lambda must be a finite real number >= 0; got --lambda -1"),
    (["compare", "--lambda", "nan"], "argument --lambda: must be a finite number such as 0.5 or 1e-3; got 'nan'"),
    (["compare", "--examples", "0"], "--examples must be an integer >= 1; got --examples 0"),
    (["compare", "--sources", "backprop,torch"], "got 'torch' in --sources backprop,torch"),
    (["compare", "--sources", "jax"], "at least two"),
    (["compare", "--show", "-1"], "got --show -1"),
    (["compare", "--init", "zeros"], "invalid choice"),
    (["compare", "--bogus"], "unrecognized arguments"),
    (["frobnicate"], "invalid choice"),
]


@pytest.mark.parametrize("argv, fragment", CLI_CASES, ids=[" ".join(c[0]) for c in CLI_CASES])
def test_cli_usage_errors_are_one_line_and_exit_2(argv, fragment, capsys):
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("gradlab: error: ")
    assert fragment in err
    assert "Traceback" not in err
