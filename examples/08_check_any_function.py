"""Check any function's gradient: the course's sister programs, regularised linear and logistic regression.

`gradlab.check_function(f, grad, *inputs, wrt=...)` checks a hand-written gradient of any
scalar function at your own point. The float arrays named by `wrt` are differentiated;
everything else (X, y, lambda) passes through untouched.

* Linear regression is written against the array API (`xp = array_namespace(theta)`), so
  jax traces the very same function and is a third, exact witness.
* Logistic regression is plain numpy, returning `(J, grad)` as the course's
  costFunctionReg does: jax cannot trace it, the report says why in one line, and the
  gradient is judged by two numeric methods (central differences and the complex step).

Each is checked twice: correct, then with one planted bug, which the report locates.

Run:  python examples/08_check_any_function.py
"""

import sys

import numpy as np
from array_api_compat import array_namespace

import gradlab


# ---------------------------------------------------------------- regularised linear regression


def linear_cost(theta, X, y, lam):
    """J = 1/(2m) |X theta - y|^2 + lam/(2m) |theta[1:]|^2 -- theta[0], the bias, is not regularised."""
    xp = array_namespace(theta, X, y)
    m = X.shape[0]
    r = X @ theta - y
    return xp.sum(r * r) / (2 * m) + lam / (2 * m) * xp.sum(theta[1:] * theta[1:])


def linear_grad(theta, X, y, lam):
    m = X.shape[0]
    reg = lam / m * theta
    reg[0] = 0.0
    return X.T @ (X @ theta - y) / m + reg


def linear_grad_bug(theta, X, y, lam):
    """The classic slip: the bias theta[0] regularised too."""
    m = X.shape[0]
    return X.T @ (X @ theta - y) / m + lam / m * theta


# -------------------------------------------------------------- regularised logistic regression


def cost_function_reg(theta, X, y, lam):
    """(J, grad) in one function, plain numpy, as in the course's exercise."""
    m = X.shape[0]
    z = X @ theta
    h = 1.0 / (1.0 + np.exp(-z))
    J = -np.sum(y * np.log(h) + (1 - y) * np.log(1 - h)) / m + lam / (2 * m) * np.sum(theta[1:] ** 2)
    grad = X.T @ (h - y) / m
    grad[1:] += lam / m * theta[1:]
    return J, grad


def cost_function_reg_bug(theta, X, y, lam):
    """The same with the gradient's final division by m forgotten."""
    m = X.shape[0]
    J, grad = cost_function_reg(theta, X, y, lam)
    return J, grad * m


def main() -> int:
    rng = np.random.default_rng(0)
    m = 12
    X = np.c_[np.ones(m), rng.normal(size=(m, 3))]
    y_lin = X @ np.array([0.5, -1.0, 2.0, 0.3]) + 0.1 * rng.normal(size=m)
    y_log = (rng.random(m) < 0.5).astype(float)
    theta = rng.normal(size=4)
    lam = 1.5

    print("1. regularised linear regression (array API: jax traces it)")
    good = gradlab.check_function(linear_cost, linear_grad, theta, X, y_lin, lam, wrt="theta")
    c = good.comparisons
    print(f"   correct gradient: {'PASS' if good.ok else 'FAIL'};  yours vs jax ||a-b||/||a+b|| = "
          f"{c['yours vs jax']['value']:.3e},  jax vs central max|a-b|/bound = {c['jax vs central']['value']:.3e}")
    bad = gradlab.check_function(linear_cost, linear_grad_bug, theta, X, y_lin, lam, wrt="theta")
    f = bad.findings[0]
    val = f.values[0]
    print(f"   planted bug (bias regularised): {'FAIL' if not bad.ok else 'PASS'} -- [{f.kind}] {f.input} "
          f"entries {[list(e) for e in f.entries]}: yours={val['yours']:.6f}, expected={val['expected']:.6f}")

    print("\n2. regularised logistic regression (plain numpy, (J, grad) from one function)")
    good2 = gradlab.check_function(cost_function_reg, None, theta, X, y_log, lam, wrt="theta")
    print(f"   {good2.notes[0]}")
    c2 = good2.comparisons
    print(f"   correct gradient: {'PASS' if good2.ok else 'FAIL'};  yours vs central max|a-b|/bound = "
          f"{c2['yours vs central']['value']:.3e},  yours vs complex step = {c2['yours vs complex step']['value']:.3e}")
    bad2 = gradlab.check_function(cost_function_reg_bug, None, theta, X, y_log, lam, wrt="theta")
    f2 = bad2.findings[0]
    print(f"   planted bug (no 1/m): {'FAIL' if not bad2.ok else 'PASS'} -- [{f2.kind}] {f2.input}: {f2.cause}")
    print(f"   {f2.experiment}")

    print("\nthe full report of the second bug:\n")
    print(bad2)
    caught = good.ok and good2.ok and not bad.ok and not bad2.ok
    caught = caught and f.entries == [(0,)] and f2.extra.get("confirmed") is True
    return 0 if caught else 1


if __name__ == "__main__":
    sys.exit(main())
