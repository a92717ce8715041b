"""Command line: parse, call, print. No maths here.

Every user error is one line on stderr and exit code 2; no traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from gan_lab import runtime
from gan_lab.errors import UserError

PROG = "gan_lab"


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is a single line (the default prints the whole usage first)."""

    def error(self, message):
        sys.stderr.write(f"{PROG}: error: {message} (see `{self.prog} --help`)\n")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    from gan_lab import data

    parser = OneLineParser(prog=PROG, description="GANs and VAEs on MNIST and Fashion-MNIST in JAX/Flax.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    train = commands.add_parser("train", help="train a registered model in a new run directory")
    train.add_argument("model", nargs="?", help="registered model name (see `gan_lab list`)")
    train.add_argument("--dataset", default=None, help=f"one of {', '.join(data.DATASETS)} (default: fashion-mnist)")
    train.add_argument("--epochs", type=int, default=None, help="epochs to train (default: the model's)")
    train.add_argument("--steps", type=int, default=None, help="stop after this many steps in total")
    train.add_argument("--batch-size", type=int, default=None)
    train.add_argument("--seed", type=int, default=None)
    train.add_argument("--lr", type=float, default=None, help="learning rate (default: the model's)")
    train.add_argument("--width", type=float, default=None, help="channel multiplier (1.0 = the paper's nets)")
    train.add_argument("--loss", default=None, help="GAN loss: bce, hinge or lsgan")
    train.add_argument("--devices", type=int, default=None, help="local devices to split each batch over")
    train.add_argument("--subset", type=int, default=None, help="train on the first N images only")
    train.add_argument("--log-every", type=int, default=None, help="steps between loss readings")
    train.add_argument("--data-dir", default=None, help="dataset directory (else $GAN_LAB_DATA, else the user cache)")
    train.add_argument("--out", default=None, help="run directory (default runs/<model>-<dataset>-<time>)")
    train.add_argument("--eval-every", type=int, default=None, metavar="N",
                       help="score samples with the evaluator networks every N epochs")
    train.add_argument("--tensorboard", action="store_true", default=None,
                       help="also write TensorBoard events to RUN_DIR/tensorboard (pip install -e '.[tensorboard]')")
    train.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue a run from its latest checkpoint")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")

    sample = commands.add_parser("sample", help="pictures and exports from a trained run (no training data needed)")
    sample.add_argument("run_dir", help="a run directory, e.g. runs/cgan-fashion-mnist-...")
    sample.add_argument("--sheet", choices=["wardrobe", "interpolate"], default=None,
                        help="wardrobe: a row per class, a column per style; interpolate: latent walks")
    sample.add_argument("--gif", action="store_true", help="animate the run's per-epoch grids")
    sample.add_argument("--n", type=int, default=None, help="export N samples as uint8 to an .npz (with --out)")
    sample.add_argument("--labels", default=None, help="conditional models only: classes to draw, e.g. 0,3,9")
    sample.add_argument("--seed", type=int, default=0, help="noise seed")
    sample.add_argument("--out", default=None, help="output file (default: RUN_DIR/sheets/..., never overwritten)")

    compare = commands.add_parser("compare", help="one sheet comparing models across datasets")
    compare.add_argument("models", nargs="+", help="registered model names")
    compare.add_argument("--datasets", nargs="+", default=list(data.DATASETS))
    compare.add_argument("--runs-dir", default="runs", help="where to look for finished runs (and put new ones)")
    compare.add_argument("--out", default=None, help="sheet path (default: comparison-<time>.png)")
    compare.add_argument("--epochs", type=int, default=None, help="use/train runs of this many epochs")
    compare.add_argument("--steps", type=int, default=None)
    compare.add_argument("--width", type=float, default=None)
    compare.add_argument("--subset", type=int, default=None)
    compare.add_argument("--seed", type=int, default=0, help="noise seed of the sheet")
    compare.add_argument("--data-dir", default=None)
    compare.add_argument("--no-progress", action="store_true")

    evaluate = commands.add_parser("eval", help="score a trained run with the evaluator networks")
    evaluate.add_argument("run_dir")
    evaluate.add_argument("--n", type=int, default=10_000, help="generated images to score (default 10000)")
    evaluate.add_argument("--seed", type=int, default=0, help="noise seed of the generated images")
    evaluate.add_argument("--data-dir", default=None)

    commands.add_parser("list", help="list the registered models")

    data_cmd = commands.add_parser("data", help="download what is missing, check it, and show where each dataset is")
    data_cmd.add_argument("--dataset", default=None, help="only this dataset")
    data_cmd.add_argument("--verify", action="store_true",
                          help="check every file's SHA-256 (always done: every load verifies)")
    data_cmd.add_argument("--data-dir", default=None)
    return parser


def cmd_train(args) -> None:
    from gan_lab import config, runs

    overrides = {
        "dataset": args.dataset, "epochs": args.epochs, "steps": args.steps, "batch_size": args.batch_size,
        "seed": args.seed, "lr": args.lr, "width": args.width, "loss": args.loss, "log_every": args.log_every,
        "subset": args.subset, "devices": args.devices, "eval_every": args.eval_every,
        "tensorboard": args.tensorboard,
    }
    if args.resume is not None:
        if args.out is not None:
            raise UserError("--out and --resume exclude each other: a resumed run stays in its own directory")
        cfg = runs.resume_config(args.resume, {**overrides, "model": args.model})
    elif args.model is None:
        raise UserError("name a model to train (see `gan_lab list`), or --resume RUN_DIR")
    else:
        cfg = config.make_config(args.model, overrides)
    run_dir = runs.train_run(cfg, out=args.out, data_dir=args.data_dir, show_progress=not args.no_progress,
                             resume=args.resume)
    print(f"run saved in {run_dir}  (samples/final.png, loss_curves.png, metrics.jsonl, config.json)")


def parse_labels(text: str | None):
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"--labels takes class numbers separated by commas, e.g. 0,3,9; got {text!r}") from None


def cmd_sample(args) -> None:
    from gan_lab import sheets

    labels = parse_labels(args.labels)
    if args.n is not None:
        if args.n < 1:
            raise UserError(f"--n must be at least 1, got {args.n}")
        print(f"wrote {sheets.export(args.run_dir, args.n, args.seed, args.out, labels)}")
    elif args.gif:
        print(f"wrote {sheets.epoch_gif(args.run_dir, args.out)}")
    elif args.sheet == "interpolate":
        if labels is not None:
            raise UserError("--labels does not apply to --sheet interpolate (row i draws class i mod 10)")
        print(f"wrote {sheets.interpolation(args.run_dir, args.seed, args.out)}")
    else:
        print(f"wrote {sheets.wardrobe(args.run_dir, args.seed, labels, args.out)}")


def cmd_compare(args) -> None:
    import time

    from gan_lab import sheets

    settings = {k: v for k, v in {"epochs": args.epochs, "steps": args.steps, "width": args.width,
                                  "subset": args.subset}.items() if v is not None}
    out = args.out or f"comparison-{time.strftime('%Y%m%d-%H%M%S')}.png"
    path = sheets.compare(args.models, args.datasets, args.runs_dir, out, settings, data_dir=args.data_dir,
                          seed=args.seed, show_progress=not args.no_progress)
    print(f"wrote {path}")


def cmd_eval(args) -> None:
    from gan_lab import evaluation

    if args.n < 2:
        raise UserError(f"--n must be at least 2, got {args.n}")
    results, path = evaluation.evaluate_run(args.run_dir, args.n, args.seed, args.data_dir)
    print("\n".join(evaluation.report_lines(results)))
    print(f"saved in {path}")


def cmd_list(args) -> None:
    from gan_lab import registry

    for name in registry.names():
        print(f"{name:12s} {registry.get(name).description}")


def cmd_data(args) -> None:
    from gan_lab import data

    if args.dataset is not None and args.dataset not in data.DATASETS:
        raise UserError(f"unknown dataset {args.dataset!r}; valid datasets: {', '.join(data.DATASETS)}")
    for name in [args.dataset] if args.dataset else data.DATASETS:
        for split in ("train", "test"):
            data.load_split(name, split, args.data_dir)  # downloads what is missing, checks every file
        # load_split has just checked every file, so the report can say so (hashes are cached).
        for line in data.describe(name, args.data_dir, verify=True):
            print(line)


COMMANDS = {"train": cmd_train, "sample": cmd_sample, "compare": cmd_compare, "eval": cmd_eval, "list": cmd_list, "data": cmd_data}


def main(argv=None) -> int:
    from gan_lab.data import DataError

    args = build_parser().parse_args(argv)
    if os.environ.get("GAN_LAB_DISTRIBUTED") == "1":
        import jax

        # Multi-host: every host runs the same command; the coordinator comes from the environment
        # (JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID, or a cluster JAX detects).
        jax.distributed.initialize()
    try:
        if runtime.APPLIED.get("error"):
            raise UserError(runtime.APPLIED["error"])
        COMMANDS[args.command](args)
    except (UserError, DataError) as err:
        sys.stdout.flush()
        sys.stderr.write(f"{PROG}: error: {err}\n")
        sys.stderr.flush()
        # Leave at once, and silence stderr first: after a failed Orbax restore its I/O threads print
        # tracebacks (right away or at shutdown), and the user must see the one line only.
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
        os._exit(2)
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
    return 0
