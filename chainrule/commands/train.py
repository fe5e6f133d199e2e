"""``chainrule train MODEL --data …``: gradient descent with the generated gradient."""

from __future__ import annotations

import argparse
import sys

from .common import add_model_argument, load_model

HELP = """\
Train a model with its generated NumPy gradient: (minibatch) gradient descent with
optional momentum, L2 weight decay, a learning-rate schedule and early stopping on a
validation split. The model's inputs x and t take the data set's features and
targets (x1..xn / t1..tk take columns; class labels are one-hot encoded for a target
with one entry per class); --map names other columns.

examples:
  chainrule train xor --data xor --epochs 500 --lr 2 --batch 4 --seed 3
  chainrule train examples/mlp_digits.chain --data digits --epochs 50 --lr 0.5 \\
      --batch 32 --val-split 0.2 --history H.json --save P.npz --plot curves.svg
  chainrule train batchnorm_digits --data digits --epochs 10 --init he
  chainrule train cnn_digits --data digits --val-split 0.2   # digits as X[1, 8, 8]
  chainrule train model.chain --data data.csv --map x1=height,x2=weight,t=label
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model on a data set",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_argument(p)
    p.add_argument(
        "--data",
        required=True,
        metavar="xor|digits|iris|FILE",
        help="xor, digits, iris, breast_cancer, or a .csv/.npz file",
    )
    p.add_argument("--epochs", type=int, default=50, help="epochs (default: 50)")
    p.add_argument("--lr", type=float, default=0.1, help="learning rate (default: 0.1)")
    p.add_argument("--batch", type=int, default=32, help="minibatch size (default: 32)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--history", metavar="H.json", help="write the history (.json or .csv)")
    p.add_argument("--save", metavar="P.npz", help="write the trained parameters (.npz)")
    p.add_argument(
        "--map",
        metavar="NAME=COLUMN,...",
        help="model input = data column(s): x1=a,t=label, x=a+b+c, x=a:h",
    )
    p.add_argument("--target", metavar="COLUMN", help="the target column of a CSV/.npz file")
    p.add_argument("--momentum", type=float, default=0.0, help="momentum (default: 0)")
    p.add_argument("--weight-decay", type=float, default=0.0, help="L2 weight decay (default: 0)")
    p.add_argument(
        "--schedule",
        choices=("constant", "step", "exp", "inverse"),
        default="constant",
        help="learning-rate schedule (default: constant)",
    )
    p.add_argument(
        "--lr-decay",
        type=float,
        default=0.5,
        help="schedule factor (step, exp) or rate (inverse) (default: 0.5)",
    )
    p.add_argument(
        "--decay-every", type=int, default=10, help="epochs between step decays (default: 10)"
    )
    p.add_argument(
        "--val-split",
        type=float,
        default=0.0,
        help="fraction of the data held out for validation (default: 0)",
    )
    p.add_argument(
        "--patience", type=int, help="early stopping: epochs without validation improvement"
    )
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    p.add_argument(
        "--init-scale",
        type=float,
        default=1.0,
        help="std of scalar parameters at initialization (default: 1)",
    )
    p.add_argument(
        "--init",
        choices=("auto", "he", "xavier", "normal", "zeros"),
        default="auto",
        help="initialization: auto (by layer kind, scaled by fan-in; a conv kernel's fan-in "
        "is C·kh·kw), he (√(2/fan-in)), xavier (√(1/fan-in)), normal (--init-scale), zeros "
        "(warns: symmetry) (default: auto)",
    )
    p.add_argument("--plot", metavar="FILE.svg|FILE.png", help="plot the learning curves")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..numeric.data import load_dataset, parse_map
    from ..numeric.train import TrainConfig, TrainingDiverged, save_params, train, write_history
    from ..progress import Progress
    from ..symbolic.errors import ChainruleError

    program = load_model(args.model)
    config = TrainConfig(
        epochs=args.epochs,
        lr=args.lr,
        batch=args.batch,
        seed=args.seed,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        schedule=args.schedule,
        lr_decay=args.lr_decay,
        decay_every=args.decay_every,
        val_split=args.val_split,
        patience=args.patience,
        dtype=args.dtype,
        init_scale=args.init_scale,
        init=args.init,
    )
    config.check()
    if config.init == "zeros":
        from ..numeric.train import ZEROS_WARNING

        print(ZEROS_WARNING, file=sys.stderr)
    for flag, path, suffixes in (
        ("--history", args.history, (".json", ".csv")),
        ("--save", args.save, (".npz",)),
        ("--plot", args.plot, (".svg", ".png")),
    ):
        if path and not path.lower().endswith(suffixes):
            raise ChainruleError(f"{flag} must end with {' or '.join(suffixes)}")
    dataset = load_dataset(args.data, target=args.target)
    mapping = parse_map(args.map)
    with Progress(config.epochs, "train", enabled=None if not args.quiet else False) as bar:

        def progress(epoch: int, record: dict) -> None:
            shown = {
                k: record[k]
                for k in ("loss", "accuracy", "val_loss", "val_accuracy")
                if record.get(k) is not None
            }
            bar.advance(**shown)

        try:
            result = train(program, dataset, config, mapping, progress=progress)
        except TrainingDiverged as exc:
            partial = getattr(exc, "partial", None)
            if partial is not None and args.history:
                write_history(partial.history, args.history)
            print(f"error: {exc}", file=sys.stderr)
            return 1
    if args.history:
        write_history(result.history, args.history)
    if args.save:
        save_params(result.params, args.save)
    if args.plot:
        _plot(result.history, args.plot)
    if not args.quiet:
        _summary(result, dataset.description)
    return 0


def _summary(result, description: str) -> None:  # noqa: ANN001
    last = result.history["epochs"][-1]
    parts = [f"epoch {last['epoch']}", f"loss {last['loss']:.4g}"]
    if last.get("accuracy") is not None:
        parts.append(f"accuracy {last['accuracy']:.2%}")
    if last.get("val_loss") is not None:
        parts.append(f"val_loss {last['val_loss']:.4g}")
    if last.get("val_accuracy") is not None:
        parts.append(f"val_accuracy {last['val_accuracy']:.2%}")
    print(f"{description}")
    print(", ".join(parts) + f" ({result.seconds:.2f} s, {result.stopped})")
    if result.best_epoch is not None:
        print(f"kept the parameters of epoch {result.best_epoch} (best validation loss)")


def _plot(history: dict, path: str) -> None:
    try:
        from ..reports.plots import learning_curves
    except ImportError:
        print(
            "warning: --plot needs chainrule.reports.plots.learning_curves, which this "
            "installation does not have; no plot written",
            file=sys.stderr,
        )
        return
    learning_curves(history, path)
    print(f"wrote {path}", file=sys.stderr)
