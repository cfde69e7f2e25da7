"""Catch the seed's bug: a gradient function that zeroes the bias columns in place.

The seed program's ``nnGradient`` reshapes ``nn_params`` into ``Theta1`` and ``Theta2``
-- views of the caller's vector -- and, to leave the bias out of the regularisation, sets
their column 0 to zero. That writes into the caller's parameters. The gradient it returns
is right, which is why comparing gradients alone does not catch it; the damage shows in
whatever the caller does next with the same array.

This script shows, with real numbers on a small generated problem:

1. what ``gradlab.check`` says about it (the finding names the argument, the layers, the
   rows and column 0, and why);
2. the seed-style gradient check (numeric gradient taken after the call, on the same array);
3. training with ``scipy.optimize.minimize(method="CG")``, and with a plain gradient-descent
   loop that updates its vector in place, each with the buggy and the fixed gradient.

Run:  python examples/03_catch_the_seed_bug.py      (a few seconds)
"""

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

import gradlab

SIZES = (4, 8, 3)


# ---------------------------------------------------------------- the seed-style functions


def _unroll(nn_params, input_layer_size, hidden_layer_size, num_labels):
    n1 = hidden_layer_size * (input_layer_size + 1)
    Theta1 = nn_params[:n1].reshape(hidden_layer_size, input_layer_size + 1)
    Theta2 = nn_params[n1:].reshape(num_labels, hidden_layer_size + 1)
    return Theta1, Theta2


def nnCostFunction(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, Lambda):
    Theta1, Theta2 = _unroll(np.ravel(nn_params), input_layer_size, hidden_layer_size, num_labels)
    m = X.shape[0]
    Y = np.eye(num_labels)[np.ravel(y)]
    a2 = np.hstack([np.ones((m, 1)), expit(np.hstack([np.ones((m, 1)), X]) @ Theta1.T)])
    h = expit(a2 @ Theta2.T)
    J = -np.sum(Y * np.log(h) + (1 - Y) * np.log(1 - h)) / m
    return J + Lambda / (2 * m) * (np.sum(Theta1[:, 1:] ** 2) + np.sum(Theta2[:, 1:] ** 2))


def make_nnGradient(copy):
    """The seed's gradient; ``copy=False`` reproduces its bug."""

    def nnGradient(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, Lambda):
        Theta1, Theta2 = _unroll(nn_params, input_layer_size, hidden_layer_size, num_labels)
        if copy:
            Theta1, Theta2 = Theta1.copy(), Theta2.copy()
        m = X.shape[0]
        Y = np.eye(num_labels)[np.ravel(y)]
        a1 = np.hstack([np.ones((m, 1)), X])
        z2 = a1 @ Theta1.T
        a2 = np.hstack([np.ones((m, 1)), expit(z2)])
        h = expit(a2 @ Theta2.T)
        delta3 = h - Y
        delta2 = (delta3 @ Theta2[:, 1:]) * expit(z2) * (1 - expit(z2))
        Theta1_grad, Theta2_grad = delta2.T @ a1, delta3.T @ a2
        Theta1[:, 0] = 0  # leave the bias out of the regularisation ... in place
        Theta2[:, 0] = 0
        grad = np.concatenate([(Theta1_grad + Lambda * Theta1).ravel(), (Theta2_grad + Lambda * Theta2).ravel()]) / m
        return grad

    return nnGradient


buggy, fixed = make_nnGradient(copy=False), make_nnGradient(copy=True)


# ---------------------------------------------------------------- a small problem


def make_data(m, seed):
    """Points in [0, 1]^4; the class is set by thresholds on x1 + x2 -- which needs biases."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0.0, 1.0, size=(m, SIZES[0]))
    s = X[:, 0] + X[:, 1]
    y = np.digitize(s, [0.8, 1.2])
    return X, y


def accuracy(params, X, y):
    return gradlab.accuracy(gradlab.Network(SIZES), params, X, y)


def main():
    args_of = lambda X, y, lam: (SIZES[0], SIZES[1], SIZES[2], X, y, lam)  # noqa: E731

    print("1. gradlab check")
    print("----------------")
    report = gradlab.check(buggy, SIZES, signature="seed", cost_fn=nnCostFunction)
    print(report)
    print()
    print("and the fixed function (copy before writing):",
          "PASS" if gradlab.check(fixed, SIZES, signature="seed", cost_fn=nnCostFunction).ok else "FAIL")

    print()
    print("2. the seed-style gradient check, run on the buggy function")
    print("-----------------------------------------------------------")
    problem = gradlab.debug_problem(SIZES, examples=5)
    X5, y5 = problem.X, problem.labels
    nn_params = gradlab.debug_init(problem.network)
    before = nn_params.copy()
    grad = buggy(nn_params, *args_of(X5, y5, 0.0))
    e = 1e-4  # the seed's step
    num = np.array([(nnCostFunction(nn_params + e * np.eye(nn_params.size)[i], *args_of(X5, y5, 0.0))
                     - nnCostFunction(nn_params - e * np.eye(nn_params.size)[i], *args_of(X5, y5, 0.0))) / (2 * e)
                    for i in range(nn_params.size)])
    changed = np.flatnonzero(nn_params != before)
    print(f"entries of nn_params changed by the call: {changed.size} (flat indices {changed.tolist()})")
    print(f"largest |BP - numeric| over all {nn_params.size} entries: {np.max(np.abs(grad - num)):.3e} "
          f"(relative to the largest entry: {np.max(np.abs(grad - num)) / np.max(np.abs(grad)):.2%})")
    print("The numeric gradient is taken at the changed point, the BP one at the original point:")
    print("the printout shows two columns that disagree, and nothing in it says why.")

    print()
    print("3. training on 600 generated examples (4-8-3 network, lambda = 0.1)")
    print("--------------------------------------------------------------------")
    X, y = make_data(600, seed=1)
    X_test, y_test = make_data(2000, seed=2)
    lam = 0.1
    p0 = gradlab.random_init(gradlab.Network(SIZES), seed=3)
    cost = lambda t: nnCostFunction(t, *args_of(X, y, lam))  # noqa: E731
    print(f"{'trainer':<34}{'gradient':>9}{'final J':>10}{'train acc':>11}{'test acc':>10}{'|bias|max':>11}")
    for name, fn in (("fixed", fixed), ("buggy", buggy)):
        start = p0.copy()
        res = minimize(cost, start, jac=lambda t: fn(t, *args_of(X, y, lam)), method="CG",
                       options={"maxiter": 400})
        t = res.x
        bias = max(np.abs(m[:, 0]).max() for m in gradlab.Network(SIZES).unpack(t))
        print(f"{'scipy minimize CG (400 iterations)':<34}{name:>9}{cost(t):>10.4f}{accuracy(t, X, y):>11.3f}"
              f"{accuracy(t, X_test, y_test):>10.3f}{bias:>11.3f}")
    for name, fn in (("fixed", fixed), ("buggy", buggy)):
        t = p0.copy()
        for _ in range(3000):
            t -= 2.0 * fn(t, *args_of(X, y, lam))  # the vector is updated in place, as most loops do
        bias = max(np.abs(m[:, 0]).max() for m in gradlab.Network(SIZES).unpack(t))
        print(f"{'gradient descent (3000 steps)':<34}{name:>9}{cost(t):>10.4f}{accuracy(t, X, y):>11.3f}"
              f"{accuracy(t, X_test, y_test):>10.3f}{bias:>11.3f}")
    print()
    print("scipy's minimize hands the gradient function a copy of x, so CG is shielded from the write;")
    print("a loop that passes its own vector is not: every step wipes the biases, and the network")
    print("trains without them.")


if __name__ == "__main__":
    main()
