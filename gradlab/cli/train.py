"""``gradlab train``, ``gradlab predict`` and ``gradlab plot``: options and work, thin over the library.

Each command has its ``add_*`` (its options, on the parser) and its ``run_*`` (the work; the
library's training, data, model and plotting modules are imported when the command runs).
"""

from __future__ import annotations

import json
import signal
import sys
import threading

from gradlab._errors import GradlabError
from gradlab._files import check_not_input
from gradlab._report import printable
from gradlab.cli.args import add_progress, hidden, integer, label_column, number, output_file
from gradlab.cli.status import EXIT_INTERRUPTED, EXIT_TERMINATED, caused_by_interrupt

_DATA_HELP = ("digits (the shipped 8x8 UCI digits), FILE.mat (keys X, y), FILE.csv (one example per row, "
              "the label last or in --label-column) or IDX images (.idx or .idx.gz, with --labels)")


def _add_data_args(p, *, default="digits") -> None:
    p.add_argument("--data", default=default, help=f"{_DATA_HELP} (default {default})")
    p.add_argument("--labels", help="IDX labels file (.idx or .idx.gz) for IDX images")
    p.add_argument("--label-column", type=label_column, metavar="N|NAME",
                   help="the labels' column of a .csv file: its number counted from 1 (-1 the last, "
                   "the default) or its header name")


def add_train(sub) -> None:
    """The ``train`` command and its options."""
    from gradlab.sources import SOURCES
    from gradlab.sources.second_order import HVP_SOURCES
    from gradlab.trainer import OPTIMISERS

    p = sub.add_parser(
        "train",
        help="train a network on digits (or your .mat / IDX data) with any gradient source",
        description=(
            "Train a sigmoid network with scipy's CG (the seed's method), L-BFGS, or a second-order "
            "method (newton-cg, trust-ncg, trust-krylov) that also takes Hessian-vector products "
            "(--hvp-source), taking the gradient from the source you name. The data are split into training and test parts "
            "(stratified, deterministic); --scale standardises the inputs with statistics of the "
            "training part only. Progress goes to stderr. Ctrl-C stops training, keeps the best "
            "parameters so far and still writes --out. Exit status: 0 done, 1 the optimiser "
            "stopped early (e.g. precision loss), 2 usage error, 130 interrupted."
        ),
    )
    _add_data_args(p)
    p.add_argument("--hidden", type=hidden, default=(25,), help="hidden layer sizes, e.g. 25 or 64,32 (default 25)")
    p.add_argument("--grad-source", default="backprop", choices=tuple(SOURCES), help="gradient source (default backprop)")
    p.add_argument("--method", default="cg", choices=tuple(OPTIMISERS),
                   help="; ".join(f"{k}: {o.description}" for k, o in OPTIMISERS.items()) + " (default cg)")
    p.add_argument("--hvp-source", dest="hvp_source", default=None, choices=tuple(HVP_SOURCES),
                   help="Hessian-vector products for " + ", ".join(k for k, o in OPTIMISERS.items() if o.hessp)
                   + " (default backprop, Pearlmutter's R-operator)")
    p.add_argument("--maxiter", type=integer, default=100, help="iterations (default 100)")
    p.add_argument("--lambda", dest="lam", type=number, default=1.0, help="regularisation strength (default 1)")
    p.add_argument("--seed", type=integer, default=0, help="seed of the initial weights and the split (default 0)")
    p.add_argument("--scale", action="store_true", help="standardise inputs (fitted on the training part)")
    p.add_argument("--test-fraction", type=number, default=0.2, help="share held out for testing, in [0, 1) (default 0.2)")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="precision of the jax source (float32 is faster on accelerators); backprop "
                   "and numeric always compute in float64 (default float64)")
    p.add_argument("--force", action="store_true", help="let --grad-source numeric train a large network")
    p.add_argument("--out", type=output_file, help="write the trained model to this .npz file")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_progress(p)
    p.set_defaults(run=run_train)


def add_predict(sub) -> None:
    """The ``predict`` command and its options."""
    p = sub.add_parser(
        "predict",
        help="accuracy of a saved model on data (and its predictions with --json)",
        description="Load a model written by `gradlab train --out` and score it on data.",
    )
    p.add_argument("model", help="model file (.npz) written by gradlab train --out")
    _add_data_args(p)
    p.add_argument("--split", choices=("all", "train", "test"), default="all",
                   help="score all rows, or the training / test part of the split the model was trained with (default all)")
    p.add_argument("--json", action="store_true", help="print accuracy and every prediction as JSON")
    p.set_defaults(run=run_predict)


def add_plot(sub) -> None:
    """The ``plot`` command and its options."""
    p = sub.add_parser(
        "plot",
        help="figures: a grid of digits, a model's hidden-unit weights, its training curve",
        description=(
            "digits: 100 random examples as images (--data); weights MODEL: each hidden unit's "
            "incoming weights as an image; history MODEL: cost and gradient norm per iteration. "
            "Writes the figure as .png, .pdf or .svg, as --out names it (matplotlib, no window)."
        ),
    )
    p.add_argument("figure", choices=("digits", "weights", "history"), help="which figure")
    p.add_argument("model", nargs="?", help="model file (.npz), for weights and history")
    _add_data_args(p)
    p.add_argument("--seed", type=integer, default=0, help="which random digits (default 0)")
    p.add_argument("--out", type=output_file, required=True, help="figure file to write: .png, .pdf or .svg")
    p.set_defaults(run=run_plot)


# ------------------------------------------------------------------------------- the work

_EXIT = {signal.SIGINT: EXIT_INTERRUPTED, signal.SIGTERM: EXIT_TERMINATED}
_SIGNAL_NAMES = {signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGTERM: "SIGTERM"}


class _StopSignals:
    """SIGINT and SIGTERM during ``gradlab train``: stop training, keep the model.

    Phase "train": the first signal raises KeyboardInterrupt, which the trainer catches
    to end training with the best parameters so far (SIGTERM behaves as Ctrl-C does, so
    ``kill PID`` keeps the work too). Later signals are only noted: a second, impatient
    Ctrl-C must not abandon the model the first one asked to keep. Phase "save": signals
    are noted and the save finishes -- it takes moments, and an interrupted save would
    lose the model (the atomic rename keeps an old --out intact either way). The exit
    status reports the first signal (130 or 143). A signal that was being ignored when
    gradlab started (``nohup``, a background job) stays ignored.
    """

    def __init__(self):
        self.received = None
        self.phase = "train"
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is not threading.main_thread():
            return self  # only the main thread may set handlers; Ctrl-C then works as before
        for sig in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(sig) is signal.SIG_IGN:
                continue
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False

    def _handle(self, signum, frame):
        first = self.received is None
        if first:
            self.received = signum
        if first and self.phase == "train":
            raise KeyboardInterrupt

    @property
    def name(self) -> str:
        return _SIGNAL_NAMES.get(self.received, "Ctrl-C")

    @property
    def status(self) -> int:
        return _EXIT.get(self.received, EXIT_INTERRUPTED)


def _say(text: str = "", *, file=None) -> None:
    print(text, file=file or sys.stdout, flush=True)


def _input_files(args) -> dict:
    """The data files a command reads, by option (a shipped dataset's name is not a file)."""
    from gradlab.data import DATASETS

    return {"--data": None if args.data in DATASETS else args.data, "--labels": args.labels}


def _interrupted_before_a_model(signals) -> int:
    # Before the training loop began (loading data), or after it ended: no model.
    print(f"gradlab: interrupted by {signals.name} before training produced a model; "
          f"nothing written", file=sys.stderr)
    return signals.status


def run_train(args) -> int:
    """``gradlab train``: load, split, train, save, report; see :class:`_StopSignals` for signals."""
    if args.out:
        check_not_input(args.out, _input_files(args), name="--out")
    with _StopSignals() as signals:
        try:
            result = train_as_asked(args)
        except Exception as exc:
            # The signal may surface as another exception: SIGINT while scipy or jax is first
            # imported gives ImportError "initialization failed", caused by the interrupt.
            if signals.received is None or not caused_by_interrupt(exc):
                raise
            return _interrupted_before_a_model(signals)
        except KeyboardInterrupt:
            return _interrupted_before_a_model(signals)
        signals.phase = "save"
        if signals.received == signal.SIGTERM and result.stop == "interrupted":
            result.message = result.message.replace("(Ctrl-C)", "(SIGTERM)")
        if args.out:
            result.save(args.out)
        if args.json:
            d = json.loads(result.to_json())  # the report's own JSON form, then one key more
            d["model_file"] = args.out
            _say(json.dumps(d, indent=2, allow_nan=False))
        else:
            _say(str(result))
            if args.out:
                _say(f"wrote {args.out}")
        if signals.received is not None:
            if result.stop != "interrupted":
                where = f"; {args.out} was written completely first" if args.out else ""
                print(f"gradlab: {signals.name} arrived as training ended{where}", file=sys.stderr)
            return signals.status
    if result.stop == "interrupted":
        return EXIT_INTERRUPTED
    return 0 if result.ok else 1


def train_as_asked(args):
    """Load the data, split it and train as the options say; the :class:`~gradlab.TrainResult`."""
    from gradlab import data as gd
    from gradlab.trainer import OPTIMISERS, train

    grad_source = args.grad_source
    if args.dtype != "float64":
        if grad_source != "jax":
            raise GradlabError(
                f"--dtype {args.dtype} applies to --grad-source jax only (backprop and numeric "
                f"compute in float64); got --grad-source {grad_source}"
            )
        from gradlab.sources import jax_source

        grad_source = jax_source(args.dtype)
    if args.hvp_source is not None and not OPTIMISERS[args.method].hessp:
        second = ", ".join(k for k, o in OPTIMISERS.items() if o.hessp)
        raise GradlabError(f"--hvp-source goes with a second-order --method ({second}); got --method {args.method}")
    dataset = gd.load(args.data, args.labels, label_column=args.label_column)
    split = gd.train_test_split(dataset.X, dataset.y, test_fraction=args.test_fraction, seed=args.seed)
    part = gd.Dataset(split.X_train, split.y_train, dataset.name, dataset.notes, dataset.image_shape, dataset.pixel_order)
    test = (split.X_test, split.y_test) if len(split.y_test) else None
    if not args.json:
        _say(f"data: {dataset.describe()}")
        for note in dataset.notes:
            _say(f"  note: {note}")
        _say(f"split: {len(split.y_train)} training / {len(split.y_test)} test examples "
             f"(stratified, seed {args.seed})")
    return train(
        part, hidden=args.hidden, grad_source=grad_source, method=args.method, hvp_source=args.hvp_source,
        lam=args.lam, maxiter=args.maxiter, seed=args.seed, scale=args.scale,
        test=test, force=args.force,
        info={"test_fraction": args.test_fraction, "split_seed": args.seed, "data_spec": str(args.data)},
    )


def _part(model, dataset, which: str):
    """The rows of ``dataset`` to score: all, or one side of the split the model was trained with."""
    from gradlab import data as gd

    if which == "all":
        return dataset.X, dataset.y
    meta = model.meta
    if "test_fraction" not in meta or "split_seed" not in meta:
        raise GradlabError(
            f"--split must be all for this model: it does not record the split it was trained with; "
            f"got --split {which}"
        )
    s = gd.train_test_split(dataset.X, dataset.y, test_fraction=meta["test_fraction"], seed=meta["split_seed"])
    X, y = (s.X_train, s.y_train) if which == "train" else (s.X_test, s.y_test)
    if len(y) == 0:
        raise GradlabError(f"--split {which} is empty: the model was trained with --test-fraction {meta['test_fraction']:g}")
    return X, y


def run_predict(args) -> int:
    """``gradlab predict``: score a saved model on data; 0."""
    import numpy as np

    from gradlab import data as gd
    from gradlab.model import load

    model = load(args.model)
    dataset = gd.load(args.data, args.labels, label_column=args.label_column)
    if dataset.X.shape[1] != model.network.n_inputs:
        raise GradlabError(
            f"--data must have {model.network.n_inputs} features for the model {args.model} "
            f"(sizes {','.join(map(str, model.network.sizes))}); got {dataset.X.shape[1]} from {dataset.name}"
        )
    X, y = _part(model, dataset, args.split)
    pred = model.predict(X)
    acc = float(np.mean(pred == y))
    if args.json:
        out = {
            "model": args.model, "data": dataset.name, "split": args.split, "m": int(len(y)),
            "accuracy": acc, "notes": list(dataset.notes),
            "predictions": pred.tolist(), "labels": y.tolist(),
        }
        _say(json.dumps(out, indent=2))
    else:
        # source and method are text from the model file: printed with control characters escaped.
        _say(f"model: {args.model}: sizes {','.join(map(str, model.network.sizes))}, source {printable(model.source)}, "
             f"method {printable(model.method)}, lambda {model.lam:g}")
        _say(f"data: {dataset.describe()}")
        for note in dataset.notes:
            _say(f"  note: {note}")
        _say(f"accuracy: {100 * acc:.2f}% ({int(np.sum(pred == y))} of {len(y)}, split {args.split})")
    return 0


def run_plot(args) -> int:
    """``gradlab plot``: draw one figure into --out; 0."""
    from gradlab import plots

    check_not_input(args.out, {"the model file": args.model, **_input_files(args)}, name="--out")

    if args.figure == "digits":
        if args.model is not None:
            raise GradlabError(f"plot digits takes no model file (it draws --data); got {args.model!r}")
        from gradlab import data as gd

        dataset = gd.load(args.data, args.labels, label_column=args.label_column)
        # plot_digits' default: the seed's 10 x 10 grid, or every example when there are fewer.
        path = plots.plot_digits(dataset, args.out, seed=args.seed)
    else:
        if args.model is None:
            raise GradlabError(f"plot {args.figure} needs a model file: gradlab plot {args.figure} MODEL.npz --out FILE.png")
        from gradlab.model import load

        model = load(args.model)
        if args.figure == "weights":
            path = plots.plot_weights(model, args.out)
        else:
            path = plots.plot_history(model, args.out)
    _say(f"wrote {path}")
    return 0
