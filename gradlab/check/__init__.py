"""Check anyone's gradient function: blame, localisation, diagnosis, purity, fast mode.

:func:`check` builds a reproducible problem (random weights and data from a seed), calls
the user's gradient function **on copies**, and compares what it returns with gradlab's
independent witnesses: ``jax.grad`` of the shared cost (exact) and central differences
over the cost as a black box (numeric, with a per-entry error estimate).

Every diagnosis comes from an experiment the checker runs, never from a guess:

* **purity** -- the arguments handed to the user are copies; afterwards they are compared
  with pristine ones, entry by entry (which argument, which entries). Every reference is
  computed on pristine arrays, so a function that writes into its input cannot fool it;
* **repeated calls** -- two calls on identical copies must agree (non-determinism), and a
  call on the array the user's function changed shows what a trainer would see next;
* **lambda on and off** -- right at ``lam = 0`` and wrong at ``lam > 0`` means the
  regularisation term; its ratio to ``lam/m * Theta`` (and whether column 0 got it) says how;
* **bias zeroed** -- a gradient equal to the true gradient at weights whose bias column is
  zero comes from a forward pass that leaves out the bias;
* **ratios and layouts** -- a block that is ``c`` times the truth (``c = m``: no ``1/m``;
  ``c = -1``: a sign flip), or the truth transposed;
* **one example** -- with ``m = 1`` the bias column of ``D_l`` *is* ``delta_{l+1}``, so the
  user's deltas can be read off and compared with the true ones layer by layer: the first
  wrong delta names the layer where the error enters (and whether ``g'(z)`` is missing);
  layers below that only inherit it are said to do so.

Isolation: a function named by a string (``"student.py:nnGradient"``), or passed with
``isolate=True``, runs in a process of its own -- a hang (``timeout``), a crash or a print
cannot reach the caller, and writes into its arguments are copied back, so purity is still
seen. :func:`grade` checks one target that way and never raises for what its code does: a
grader's row (``pass``, ``fail``, ``error``, ``timeout``, ``crashed``).

Fast mode (large networks) compares every entry with the exact witness (jax) -- one
gradient evaluation -- and replaces the ``2P`` cost evaluations of a full central-difference
check with random-direction checks of the witness (two evaluations per direction, whatever
``P``); the diagnosis is the same as in full mode. Without an exact witness it localises
wrong entries by bisection with masked directions, never past the budget of a full check.

Functions as they come: a flat gradient of shape (P,), (P, 1) or (1, P), a ``(J, grad)``
pair, one gradient per matrix; labels 1..K and column-major unrolling as options
(``labels=1``, ``unroll="F"``), detected and named when unstated; anything else through a
call template (``call="NeuralNet(sizes, X, y, lam).gradient(params)"``); the user's own
data and weights (``problem=``, ``params=``, :func:`user_point`).

Any function and any layer go through the same witnesses, rules and report face:
:func:`check_function` (a scalar function of any inputs) and :func:`check_layer` (a
layer's backward pass, ``dout . J``), over the generic engine in
:mod:`gradlab.check.generic`.
"""

from gradlab._errors import UserCodeError, UserCodeStopped
from gradlab._isolation import DEFAULT_TIMEOUT
from gradlab._usercode import load_function, load_target
from gradlab.check.conventions import NAMES, CallTemplate, Convention
from gradlab.check.core import FULL_MODE_MAX_PARAMS, check
from gradlab.check.findings import INPUT_KINDS, KINDS, Finding, InputFinding
from gradlab.check.function import check_function
from gradlab.check.grading import STATUSES, Outcome, grade
from gradlab.check.layer import DEFAULT_DOUTS, check_layer
from gradlab.check.point import load_weights, user_point
from gradlab.check.report import CheckReport, GradientReport
from gradlab.check.shrinking import shrink

__all__ = [
    "check",
    "shrink",
    "load_function",
    "load_target",
    "user_point",
    "load_weights",
    "CallTemplate",
    "Convention",
    "NAMES",
    "CheckReport",
    "Finding",
    "UserCodeError",
    "UserCodeStopped",
    "grade",
    "Outcome",
    "STATUSES",
    "DEFAULT_TIMEOUT",
    "KINDS",
    "FULL_MODE_MAX_PARAMS",
    "check_function",
    "check_layer",
    "GradientReport",
    "InputFinding",
    "INPUT_KINDS",
    "DEFAULT_DOUTS",
]
