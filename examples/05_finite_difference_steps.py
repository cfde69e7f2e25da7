"""How big should a finite-difference step be? The V of truncation against round-off.

    python examples/05_finite_difference_steps.py [out.png]

Takes the gradient of the seed's 3-5-3 check problem by forward differences, central
differences, Richardson extrapolation and the complex step, at steps from 1e-1 down to
1e-16, and prints each one's relative error against jax's exact gradient. Too large a
step and the truncation error (~h, ~h^2) dominates; too small and round-off (~eps/h)
does: the best step sits at the bottom of the V, near sqrt(eps) for forward and
eps^(1/3) for central differences. The complex step subtracts nothing, so it stays at
round-off however small the step. Saves the figure (default
$GRADLAB_EXAMPLES_OUT/finite_difference_steps.png, see examples/README.md).
Runs in a few seconds.
"""

import os
import sys
from pathlib import Path

import gradlab
from gradlab.steps import plot_steps, step_curve

problem = gradlab.debug_problem((3, 5, 3), examples=5)
params = gradlab.debug_init(problem.network)

report = step_curve(problem, params)
print(report)

if len(sys.argv) > 1:
    out = Path(sys.argv[1])
else:
    folder = Path(os.environ.get("GRADLAB_EXAMPLES_OUT", "gradlab-examples-out"))
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "finite_difference_steps.png"
plot_steps(report, out)
print(f"\nfigure written to {out}")

# The default steps gradlab uses, and what they give on this problem:
for method in ("forward", "central", "richardson", "complex"):
    r = gradlab.numeric_gradient(problem, params, method=method)
    exact = gradlab.gradient(problem, params, "jax")
    err = abs(r.gradient - exact).max()
    print(f"{method:<11} default step: max |error| {err:.1e}, largest error estimate {r.error.max():.1e}")
