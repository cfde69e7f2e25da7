"""Train the shipped digits with hand-written back-propagation and with jax; show that the
two runs coincide, then save the figures.

    python examples/02_train_digits.py [FOLDER]

FOLDER receives digits.png, weights.png, history.png and model.npz (default:
$GRADLAB_EXAMPLES_OUT, or gradlab-examples-out/ in the current folder when that is unset;
see examples/README.md). Runs in a few seconds: 50 CG iterations of a 64-25-10 network,
twice.
"""

import os
import sys
from pathlib import Path

import numpy as np

import gradlab
from gradlab import plots
from gradlab.data import load_digits, train_test_split

#: Enough iterations for the two trajectories to drift apart measurably (round-off grows
#: along them) and for the test accuracy to settle; the CLI's documented run uses 100.
MAXITER = 50


def main(folder: Path) -> None:
    digits = load_digits()
    split = train_test_split(digits.X, digits.y, test_fraction=0.2, seed=0)
    print(digits.describe())
    print(f"split: {len(split.y_train)} training, {len(split.y_test)} test examples\n")

    # The same starting weights for both runs (the same seed would give them too).
    init = gradlab.random_init(gradlab.Network((64, 25, 10)), seed=0)
    runs = {}
    for source in ("backprop", "jax"):
        runs[source] = gradlab.train(
            split.X_train, split.y_train, hidden=25, grad_source=source, method="cg",
            lam=1.0, maxiter=MAXITER, init=init, test=(split.X_test, split.y_test), progress=False,
        )
        print(runs[source], "\n")

    a, b = runs["backprop"].history, runs["jax"].history
    print("iteration   cost (backprop)      cost (jax)           relative difference")
    for k in (0, 1, 2, 5, 10, 20, 30, 40, 50):
        if k < min(len(a), len(b)):
            rel = abs(a.cost[k] - b.cost[k]) / abs(b.cost[k])
            print(f"{k:>9}   {a.cost[k]:.15f}   {b.cost[k]:.15f}   {rel:.1e}")
    n = min(len(a), len(b), 21)
    worst = float(np.max(np.abs(a.cost[:n] - b.cost[:n]) / np.abs(b.cost[:n])))
    same = np.array_equal(runs["backprop"].predict(split.X_test), runs["jax"].predict(split.X_test))
    print(f"\nlargest relative cost difference over iterations 0..{n - 1}: {worst:.1e}")
    print(f"identical test predictions: {same}")

    folder.mkdir(parents=True, exist_ok=True)
    model = runs["backprop"].save(folder / "model.npz")
    written = [
        plots.plot_digits(digits, folder / "digits.png", seed=0),
        plots.plot_weights(runs["backprop"], folder / "weights.png"),
        plots.plot_history(runs["backprop"], folder / "history.png"),
        model,
    ]
    print("\nwrote:\n  " + "\n  ".join(written))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(os.environ.get("GRADLAB_EXAMPLES_OUT", "gradlab-examples-out")))
