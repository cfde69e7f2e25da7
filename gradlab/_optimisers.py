"""The optimisers the trainer runs, registered by name, and the stops that count as success."""

from __future__ import annotations

import dataclasses

__all__ = ["Optimiser", "OPTIMISERS", "OK_STOPS"]


@dataclasses.dataclass(frozen=True)
class Optimiser:
    """A registered optimiser: the scipy.optimize.minimize method behind a short name."""

    name: str
    scipy_method: str
    description: str
    # scipy's status codes for this method, as short reasons (0 and 1 mean the same for all).
    stops: dict
    #: Second order: the method takes Hessian-vector products (scipy's ``hessp=``).
    hessp: bool = False


#: Optimisers by name, one line each; the CLI's --method choices come from this table.
OPTIMISERS: dict[str, Optimiser] = {
    "cg": Optimiser("cg", "CG", "nonlinear conjugate gradient (scipy CG, the seed's fmin_cg)", {0: "converged", 1: "maxiter", 2: "precision loss", 3: "nan"}),
    "lbfgs": Optimiser("lbfgs", "L-BFGS-B", "limited-memory BFGS (scipy L-BFGS-B)", {0: "converged", 1: "maxiter", 2: "line search failed"}),
    "newton-cg": Optimiser("newton-cg", "Newton-CG", "truncated Newton: CG on H p = -g with Hessian-vector products, then a line search (scipy Newton-CG)", {0: "converged", 1: "maxiter", 2: "precision loss", 3: "not positive definite or nan"}, hessp=True),
    "trust-ncg": Optimiser("trust-ncg", "trust-ncg", "trust region, its step by CG (Steihaug) with Hessian-vector products (scipy trust-ncg)", {0: "converged", 1: "maxiter", 2: "bad model", 3: "linear algebra error"}, hessp=True),
    "trust-krylov": Optimiser("trust-krylov", "trust-krylov", "trust region, its step nearly exact in a Krylov subspace of Hessian-vector products (scipy trust-krylov)", {0: "converged", 1: "maxiter", 2: "bad model", 3: "linear algebra error"}, hessp=True),
}

#: Stops that leave a trustworthy result: the optimiser met its tolerance, ran its
#: iterations, or the caller asked it to stop.
OK_STOPS = ("converged", "maxiter", "callback")
