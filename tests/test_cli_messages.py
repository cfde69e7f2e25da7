"""Messages that help the person who made the slip: the words a user reads after the common
mistakes, each asserted as it is printed."""

import sys
from pathlib import Path

import numpy as np
import pytest

import gradlab
from gradlab.cli import main


def _error(argv, capsys) -> str:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("gradlab: error: ")
    return err.rstrip("\n")


def test_sizes_separated_by_spaces_get_a_hint_and_the_commands_help(capsys):
    err = _error(["compare", "--sizes", "3", "5", "3"], capsys)
    assert err == ("gradlab: error: unrecognized arguments: '5' '3'; layer sizes are comma-separated, without "
                   "spaces: --sizes 3,5,3 (see gradlab compare --help)")


@pytest.mark.parametrize("argv, hint", [
    (["train", "--hidden", "25", "10"], "; hidden layer sizes are comma-separated, without spaces: --hidden 25,10 "
                                        "(see gradlab train --help)"),
    (["compare", "--sources", "backprop", "jax"], "; sources are comma-separated, without spaces: "
                                                  "--sources backprop,jax (see gradlab compare --help)"),
])
def test_other_lists_separated_by_spaces_get_the_same_hint(capsys, argv, hint):
    assert _error(argv, capsys).endswith(hint)


def test_no_message_repeats_the_programs_name(capsys):
    for argv in (["compare", "--sizes", "3", "5"], ["compare", "--lambda", "nan"], ["--bogus"]):
        err = _error(argv, capsys)
        assert not err.startswith("gradlab: error: gradlab")


def test_an_unknown_option_names_the_help_of_its_command(capsys):
    assert _error(["compare", "--bogus", "1"], capsys).endswith(
        "unrecognized arguments: '--bogus' '1' (see gradlab compare --help)")
    assert _error(["--bogus"], capsys).endswith("unrecognized arguments: '--bogus' (see gradlab --help)")


@pytest.mark.parametrize("argv, message", [
    (["compare", "--lambda", "-1"], "--lambda must be a finite real number >= 0; got --lambda -1"),
    (["train", "--lambda", "-1", "--json"], "--lambda must be a finite real number >= 0; got --lambda -1"),
    (["check", "x.py:f", "--lambda=-0.5"], "--lambda must be a finite real number >= 0; got --lambda -0.5"),
    (["steps", "--lambda", "-2"], "--lambda must be a finite real number >= 0; got --lambda -2"),
    (["explain", "--lambda", "-3"], "--lambda must be a finite real number >= 0; got --lambda -3"),
    (["compare", "--examples", "0"], "--examples must be an integer >= 1; got --examples 0"),
    (["train", "--test-fraction", "1", "--quiet"], "--test-fraction must be a number in [0, 1); got --test-fraction 1"),
    (["explain", "--example", "9"], "--example must be an integer in [0, 4] (m=5 examples); got --example 9"),
])
def test_options_are_named_as_the_user_typed_them(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.py").write_text("import gradlab\ndef f(problem, params):\n"
                                   "    return gradlab.gradient(problem, params)\n")
    err = _error(argv, capsys)
    assert err == f"gradlab: error: {message}"
    assert "lam" not in err.replace("--lambda", "")


def test_an_unknown_source_lists_the_names_and_offers_no_callable(capsys):
    err = _error(["compare", "--sources", "backprop,torch"], capsys)
    assert err == ("gradlab: error: --sources must be comma-separated names of gradient sources, from: "
                   "backprop, jax, numeric, numeric-forward, numeric-complex, numeric-richardson; "
                   "got 'torch' in --sources backprop,torch")
    assert "callable" not in err


def _no_student_grad_importable(monkeypatch):
    """Another test may have imported a student_grad, or put a folder holding one on sys.path
    (gradlab puts a checked file's folder there, as ``python FILE.py`` would)."""
    monkeypatch.delitem(sys.modules, "student_grad", raising=False)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if not (Path(p or ".") / "student_grad.py").exists()])


def test_a_module_name_that_is_a_file_here_suggests_the_file(capsys, tmp_path, monkeypatch):
    _no_student_grad_importable(monkeypatch)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "student_grad.py").write_text("def f(problem, params):\n    return params\n")
    err = _error(["check", "student_grad:f"], capsys)
    assert err == ("gradlab: error: target: no module named 'student_grad', but there is a file student_grad.py "
                   "here: name the file, student_grad.py:f")


def test_a_module_name_with_no_such_file_is_still_plainly_missing(capsys, tmp_path, monkeypatch):
    _no_student_grad_importable(monkeypatch)
    monkeypatch.chdir(tmp_path)
    err = _error(["check", "student_grad:f"], capsys)
    assert err == "gradlab: error: target: no module named 'student_grad' (nor a file 'student_grad')"


def test_a_gradient_function_returning_none_is_told_so(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "g.py").write_text("def f(problem, params):\n    grad = params * 0\n")
    assert main(["check", "g.py:f"]) == 1
    out = capsys.readouterr().out
    assert "f returned None (is its return statement missing?); a gradient is a float array of length 38" in out
    assert "shape ()" not in out and "NoneType" not in out


def test_a_source_returning_none_is_told_so():
    p = gradlab.debug_problem()
    with pytest.raises(gradlab.GradlabError) as info:
        gradlab.gradient(p, gradlab.debug_init(p.network), source=lambda problem, params: None)
    assert str(info.value) == ("source '<lambda>' returned None (is its return statement missing?); it must "
                               "return the gradient, a float array of length 38")


def test_a_cost_function_returning_none_is_told_so():
    def cost(problem, params):
        pass

    with pytest.raises(gradlab.GradlabError, match=r"cost_fn \S*cost returned None \(is its return statement missing\?\)"):
        gradlab.check(lambda problem, params: gradlab.gradient(problem, params), (3, 5, 3), cost_fn=cost)


@pytest.mark.parametrize("sources, verdict", [
    ("backprop,jax", "verdict: the pair agrees"),
    ("backprop,jax,numeric", "verdict: all 3 pairs agree"),
])
def test_the_verdict_counts_pairs_in_words(capsys, sources, verdict):
    assert main(["compare", "--sources", sources]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith(verdict) and "(s)" not in out


@pytest.mark.parametrize("sources, verdict", [
    (("backprop",), "verdict: the pair DISAGREES"),
    (("backprop", "jax"), "verdict: 2 of 3 pairs DISAGREE"),
])
def test_a_wrong_users_source_disagrees_in_words(sources, verdict):
    p = gradlab.debug_problem()
    wrong = lambda problem, params: np.ones(problem.network.n_params)  # noqa: E731
    report = gradlab.compare(p, gradlab.debug_init(p.network), (*sources, wrong))
    assert str(report).rstrip().endswith(verdict)


@pytest.mark.slow  # a second or more (the quick loop leaves it out)
def test_steps_says_wrote_as_plot_does(capsys, tmp_path):
    out = tmp_path / "x.png"
    assert main(["steps", "--out", str(out)]) == 0
    assert capsys.readouterr().out.rstrip().endswith(f"wrote {out}")


# ------------------------------------------------------------------ data, splits and models


@pytest.fixture
def small_data(tmp_path, monkeypatch):
    """A folder with a small CSV data set (2 features, labels 0..2 in 'label') and a model
    trained on it from Python, which records no train/test split."""
    monkeypatch.chdir(tmp_path)
    rows = "\n".join(f"{i % 7},{(3 * i) % 5},{i % 3}" for i in range(30))
    (tmp_path / "small.csv").write_text(f"a,b,label\n{rows}\n")
    rng = np.random.default_rng(0)
    gradlab.train(rng.normal(size=(30, 2)), np.arange(30) % 3, hidden=3, maxiter=2,
                  progress=False).save(tmp_path / "python.npz")
    return tmp_path


@pytest.mark.parametrize("argv, message", [
    (["train", "--label-column", "2"],
     "--label-column is for a .csv file, not the shipped dataset 'digits'; got --label-column 2"),
    (["train", "--data", "small.csv", "--label-column", "z"],
     "small.csv: --label-column 'z' is not a column of the header; its columns are 'a', 'b', 'label'"),
    (["predict", "python.npz", "--data", "small.csv", "--label-column", "z"],
     "small.csv: --label-column 'z' is not a column of the header; its columns are 'a', 'b', 'label'"),
])
def test_options_spelled_only_in_python_are_said_as_typed(small_data, capsys, argv, message):
    # label_column is a name no one types on the command line.
    err = _error(argv, capsys)
    assert err == f"gradlab: error: {message}"
    assert "label_column" not in err


def test_a_split_a_model_does_not_record_names_the_option(small_data, capsys):
    err = _error(["predict", "python.npz", "--data", "small.csv", "--split", "test"], capsys)
    assert err == ("gradlab: error: --split must be all for this model: it does not record the split it was "
                   "trained with; got --split test")


def test_an_empty_test_split_names_the_options(small_data, capsys):
    assert main(["train", "--data", "small.csv", "--hidden", "3", "--maxiter", "2", "--test-fraction", "0",
                 "--quiet", "--out", "all.npz"]) == 0
    capsys.readouterr()
    err = _error(["predict", "all.npz", "--data", "small.csv", "--split", "test"], capsys)
    assert err == "gradlab: error: --split test is empty: the model was trained with --test-fraction 0"


def test_data_with_the_wrong_number_of_features_for_the_model_names_the_option(small_data, capsys):
    err = _error(["predict", "python.npz"], capsys)
    assert err == ("gradlab: error: --data must have 2 features for the model python.npz (sizes 2,3,3); "
                   "got 64 from digits")


def test_a_cost_given_twice_names_both_options(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "g.py").write_text("import gradlab\ndef f(problem, params):\n    return gradlab.gradient(problem, params)\n"
                                   "def c(problem, params):\n    return gradlab.cost(problem, params)\n")
    err = _error(["check", "g.py:f", "--cost", "c", "--cost-call", "c(problem, params)"], capsys)
    assert err == ("gradlab: error: --cost and --cost-call both name the cost (a function, or a call template); "
                   "give one")


def test_train_test_fraction_that_leaves_a_label_without_training_examples_says_so(capsys):
    assert main(["train", "--test-fraction", "0.9995", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gradlab: error: --test-fraction 0.9995 leaves 1 training example out of 1797, none of "
                          "label ") and err.endswith(": take less\n"), err


@pytest.mark.parametrize("noun, said", [("int64", "an int64"), ("float64", "a float64"), ("uint8", "a uint8"),
                                        ("object", "an object"), ("list", "a list"), ("", "a ")])
def test_messages_put_the_right_article_before_a_type(noun, said):
    from gradlab._report import with_article

    assert with_article(noun) == said
