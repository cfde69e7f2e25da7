"""gradlab.testing: strategies validate their arguments; the assertion carries the numbers."""

import numpy as np
import pytest
from hypothesis import given

import gradlab
from gradlab.testing import assert_gradients_agree, networks, parameters, problems, problems_with_parameters


@given(networks(min_layers=3, max_layers=3, min_width=2, max_width=4))
def test_networks_respect_their_bounds(net):
    assert net.n_layers == 3 and all(2 <= s <= 4 for s in net.sizes)


@given(networks())
def test_networks_default_to_three_layers_the_commonest_hand_written_gradient(net):
    assert net.n_layers == 3


@given(problems_with_parameters())
def test_problems_default_to_three_layer_networks(case):
    problem, params = case
    assert problem.network.n_layers == 3 and params.shape == (problem.network.n_params,)


def test_networks_draw_every_depth_they_are_asked_for():
    from hypothesis import settings

    seen = set()

    @settings(max_examples=100, database=None)
    @given(networks(min_layers=2, max_layers=5, max_width=2))
    def draw(net):
        seen.add(net.n_layers)

    draw()
    assert seen == {2, 3, 4, 5}


@given(networks(min_layers=4, max_width=2))
def test_networks_max_layers_follows_a_min_layers_above_the_default(net):
    assert net.n_layers == 4


@given(problems(min_examples=2, max_examples=3, max_lam=0.5, targets="labels"))
def test_problems_respect_their_bounds(p):
    assert 2 <= p.m <= 3 and 0 <= p.lam <= 0.5 and p.labels is not None


@given(problems_with_parameters(max_weight=2.0))
def test_parameters_have_the_network_length_and_bound(case):
    p, params = case
    assert params.shape == (p.network.n_params,) and np.all(np.abs(params) <= 2.0)


@pytest.mark.parametrize(
    "build, pattern",
    [
        (lambda: networks(min_layers=1), r"min_layers.*>= 2.*min_layers=1"),
        (lambda: networks(min_width=5, max_width=3), r"max_width must be >= min_width"),
        (lambda: networks(max_layers=2), r"max_layers must be >= min_layers; got min_layers=3, max_layers=2"),
        (lambda: networks(min_layers="3"), r"min_layers must be an integer >= 2; got min_layers='3'"),
        (lambda: parameters("net"), r"network.*gradlab.Network"),
        (lambda: problems(max_lam=-1.0), r"max_lam.*max_lam=-1.0"),
        (lambda: problems(targets="onehot"), r"targets.*'labels', 'matrix', 'both'"),
    ],
)
def test_strategies_validate_when_built(build, pattern):
    with pytest.raises(gradlab.GradlabError, match=pattern):
        build()


def test_assert_gradients_agree_passes_for_correct_sources():
    p = gradlab.debug_problem(lam=1.0)
    assert_gradients_agree(p, gradlab.debug_init(p.network), sources=("backprop", "jax", "numeric"))


def test_assert_gradients_agree_message_carries_the_numbers():
    def missing_one_over_m(problem, params):
        return gradlab.gradient(problem, params) * problem.m

    p = gradlab.debug_problem()
    with pytest.raises(AssertionError) as info:
        assert_gradients_agree(p, gradlab.debug_init(p.network), sources=(missing_one_over_m, "jax"))
    msg = str(info.value)
    assert "missing_one_over_m vs jax" in msg and "Theta" in msg and "rel error" in msg
    assert "missing_one_over_m=" in msg and "jax=" in msg
