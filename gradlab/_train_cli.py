"""The work behind ``gradlab train``, ``gradlab predict`` and ``gradlab plot`` (thin over the library)."""

from __future__ import annotations

import json
import sys

from gradlab._errors import GradlabError
from gradlab._report import _jsonable

#: Exit status of ``gradlab train`` when Ctrl-C stopped it (128 + SIGINT, the shell's convention).
EXIT_INTERRUPTED = 130


def _say(text: str = "", *, file=None) -> None:
    print(text, file=file or sys.stdout, flush=True)


def run_train(args) -> int:
    from gradlab import data as gd
    from gradlab.trainer import train

    grad_source = args.grad_source
    if args.dtype != "float64":
        if grad_source != "jax":
            raise GradlabError(
                f"--dtype {args.dtype} applies to --grad-source jax only (backprop and numeric "
                f"compute in float64); got --grad-source {grad_source}"
            )
        from gradlab.sources import jax_source

        grad_source = jax_source(args.dtype)
    dataset = gd.load(args.data, args.labels)
    split = gd.train_test_split(dataset.X, dataset.y, test_fraction=args.test_fraction, seed=args.seed)
    part = gd.Dataset(split.X_train, split.y_train, dataset.name, dataset.notes, dataset.image_shape, dataset.pixel_order)
    test = (split.X_test, split.y_test) if len(split.y_test) else None
    if not args.json:
        _say(f"data: {dataset.describe()}")
        for note in dataset.notes:
            _say(f"  note: {note}")
        _say(f"split: {len(split.y_train)} training / {len(split.y_test)} test examples "
             f"(stratified, seed {args.seed})")
    result = train(
        part, hidden=args.hidden, grad_source=grad_source, method=args.method, lam=args.lam,
        maxiter=args.maxiter, seed=args.seed, scale=args.scale, progress=not (args.quiet or args.json),
        test=test, force=args.force,
        info={"test_fraction": args.test_fraction, "split_seed": args.seed, "data_spec": str(args.data)},
    )
    if args.out:
        result.save(args.out)
    if args.json:
        d = result.to_dict()
        d["model_file"] = args.out
        _say(json.dumps(_jsonable(d), indent=2, allow_nan=False))
    else:
        _say(str(result))
        if args.out:
            _say(f"wrote {args.out}")
    if result.stop == "interrupted":
        return EXIT_INTERRUPTED
    return 0 if result.ok else 1


def _part(model, dataset, which: str):
    """The rows of ``dataset`` to score: all, or one side of the split the model was trained with."""
    from gradlab import data as gd

    if which == "all":
        return dataset.X, dataset.y
    meta = model.meta
    if "test_fraction" not in meta or "split_seed" not in meta:
        raise GradlabError(
            f"split must be 'all' for this model: it does not record the split it was trained with; "
            f"got split={which!r}"
        )
    s = gd.train_test_split(dataset.X, dataset.y, test_fraction=meta["test_fraction"], seed=meta["split_seed"])
    X, y = (s.X_train, s.y_train) if which == "train" else (s.X_test, s.y_test)
    if len(y) == 0:
        raise GradlabError(f"split={which!r} is empty (the model was trained with test_fraction={meta['test_fraction']})")
    return X, y


def run_predict(args) -> int:
    import numpy as np

    from gradlab import data as gd
    from gradlab.model import load

    model = load(args.model)
    dataset = gd.load(args.data, args.labels)
    if dataset.X.shape[1] != model.network.n_inputs:
        raise GradlabError(
            f"data must have {model.network.n_inputs} features for the model {args.model} "
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
        _say(f"model: {args.model}: sizes {','.join(map(str, model.network.sizes))}, source {model.source}, "
             f"method {model.method}, lambda {model.lam:g}")
        _say(f"data: {dataset.describe()}")
        for note in dataset.notes:
            _say(f"  note: {note}")
        _say(f"accuracy: {100 * acc:.2f}% ({int(np.sum(pred == y))} of {len(y)}, split {args.split})")
    return 0


def run_plot(args) -> int:
    from gradlab import plots

    if args.figure == "digits":
        if args.model is not None:
            raise GradlabError(f"plot digits takes no model file (it draws --data); got {args.model!r}")
        from gradlab import data as gd

        path = plots.plot_digits(gd.load(args.data, args.labels), args.out, seed=args.seed)
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
