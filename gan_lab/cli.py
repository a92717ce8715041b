"""Command line: parse, call, print. No maths here.

Every user error is one line on stderr and exit code 2; no traceback.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import signal
import sys

from gan_lab import distributed, runtime
from gan_lab.errors import UserError

PROG = "gan_lab"


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is a single line (the default prints the whole usage first)."""

    def error(self, message):
        sys.stderr.write(f"{PROG}: error: {message} (see `{self.prog} --help`)\n")
        sys.exit(2)


NO_STEP_LIMIT = "none"


def add_setting_flags(parser) -> None:
    """A flag for every run setting (config.Config) and every model's own setting (their @register
    lines), with the declaration's help; values are checked by the declarations (config.validate)."""
    from gan_lab import config, registry

    def add(name, declared, kind, extra_help=""):
        options = {"default": None, "help": declared.help + extra_help}
        if kind is bool:
            options["action"] = "store_true"
        else:
            options["type"] = steps_limit if name == "steps" else kind
            options["metavar"] = name.upper()
        parser.add_argument(config.flag(name), dest=name, **options)

    presets = {}  # preset name -> the models that have it, for --preset's help
    for name in registry.names():
        for preset in registry.get(name).presets:
            presets.setdefault(preset, []).append(name)
    for name, declared in config.run_settings().items():
        known = "; ".join(f"{preset}: {', '.join(models)}" for preset, models in presets.items())
        add(name, declared, config.setting_type(name), f" ({known})" if name == "preset" and known else "")
    for name, (declared, models) in registry.all_settings().items():
        defaults = {model: registry.get(model).default(name) for model in models}  # each model's own Setting
        if len(set(map(repr, defaults.values()))) == 1:
            told = f" (default {next(iter(defaults.values()))}; models: {', '.join(models)})"
        else:  # models that set it differently (e.g. dragan's penalty weight): each model's default
            told = f" (defaults: {', '.join(f'{model} {value}' for model, value in defaults.items())})"
        add(name, declared, type(declared.default), told)


def steps_limit(text: str):
    """--steps: a whole number, or `none` (no limit: train all epochs)."""
    if text.strip().lower() == NO_STEP_LIMIT:
        return NO_STEP_LIMIT
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: a number of steps, or none") from None


def port_number(text: str) -> int:
    """--port: 1..65535."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: a number 1..65535")
    return port


def build_parser() -> argparse.ArgumentParser:
    from gan_lab import config, data, evaluation, study

    parser = OneLineParser(prog=PROG, description="GANs and VAEs on MNIST and Fashion-MNIST in JAX/Flax.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    train = commands.add_parser("train", help="train a registered model in a new run directory")
    train.add_argument("model", nargs="?", help="registered model name (see `gan_lab list`)")
    add_setting_flags(train)
    train.add_argument("--data-dir", default=None, help="dataset directory (else $GAN_LAB_DATA, else the user cache)")
    train.add_argument("--out", default=None, help="run directory (default runs/<model>-<dataset>-<time>)")
    train.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue a run from its latest checkpoint")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")

    sample = commands.add_parser("sample", help="pictures and exports from a trained run (no training data needed)")
    sample.add_argument("run_dir", help="a run directory, e.g. runs/cgan-fashion-mnist-...")
    sample.add_argument("--sheet", choices=["wardrobe", "interpolate", "manifold", "codes"], default=None,
                        help="wardrobe: a row per class (infogan: per categorical code value), a column per style "
                             "(with no output flag: the wardrobe, or a grid of samples for a model without classes); "
                             "interpolate: latent walks; manifold: the decodings over a 2-D latent (a run trained "
                             "with --z-dim 2); codes: each continuous code from -1 to 1 (infogan)")
    sample.add_argument("--gif", action="store_true", help="animate the run's per-epoch grids")
    sample.add_argument("--n", type=int, default=None, help="export N samples as uint8 to an .npz (with --out)")
    sample.add_argument("--labels", default=None, help="conditional models only: classes to draw, e.g. 0,3,9")
    sample.add_argument("--seed", type=int, default=None, help="noise seed (default 0)")
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

    study_cmd = commands.add_parser("study", help="train and score every (model, dataset, seed) with one budget; "
                                    "resumable (then `gan_lab report STUDY_DIR`)")
    study_cmd.add_argument("--models", nargs="+", default=["all"], help="registered model names, or all (default)")
    study_cmd.add_argument("--datasets", nargs="+", default=list(data.DATASETS))
    study_cmd.add_argument("--seeds", type=int, default=3, help="training seeds per (model, dataset) (default 3)")
    study_cmd.add_argument("--sample-draws", type=int, default=study.CPU_DRAWS,
                           help=f"independent sample draws scored per trained model (default {study.CPU_DRAWS})")
    study_cmd.add_argument("--n-eval", type=int, default=evaluation.EVAL_SAMPLES,
                           help=f"generated images per draw (default {evaluation.EVAL_SAMPLES})")
    study_cmd.add_argument("--epochs", type=int, default=study.CPU_EPOCHS, help="training budget: epochs (the same "
                           f"images for every model; default {study.CPU_EPOCHS}, the CPU setting; the collections "
                           "train 25 on MNIST, 40 on Fashion-MNIST)")
    study_cmd.add_argument("--width", type=float, default=study.CPU_WIDTH, help="network width for every model that "
                           f"has one (default {study.CPU_WIDTH}, the CPU setting; 1 is the papers')")
    study_cmd.add_argument("--subset", type=int, default=None, help="train on the first N images only")
    study_cmd.add_argument("--precision", default="f32", help=config.run_settings()["precision"].help)
    study_cmd.add_argument("--dir", default=None, help="study directory (default studies/<setting>); a stopped "
                           "study continues when given the same directory and settings")
    study_cmd.add_argument("--shard", default=None, metavar="K/N", help="run only shard K of N (0-based): "
                           "N processes or hosts given the same --dir share the study, each running its own jobs")
    study_cmd.add_argument("--data-dir", default=None)
    study_cmd.add_argument("--no-progress", action="store_true")

    sweep_cmd = commands.add_parser("sweep", help="N settings of one model drawn from the search ranges its settings "
                                    "declare, each trained on both datasets with one budget (paired); resumable")
    sweep_cmd.add_argument("model", help="registered model name (see `gan_lab list`)")
    sweep_cmd.add_argument("--trials", type=int, default=20, help="settings to draw (default 20); more later keeps "
                           "the first ones")
    sweep_cmd.add_argument("--datasets", nargs="+", default=list(data.DATASETS))
    sweep_cmd.add_argument("--epochs", type=int, default=study.CPU_EPOCHS, help="training budget of every job "
                           f"(default {study.CPU_EPOCHS})")
    sweep_cmd.add_argument("--subset", type=int, default=None, help="train on the first N images only")
    sweep_cmd.add_argument("--fix", nargs="+", default=[], metavar="NAME=VALUE",
                           help="settings kept out of the search, e.g. width=0.5 (the others are drawn as before)")
    sweep_cmd.add_argument("--seed", type=int, default=0, help="seed of the draws and of every job's training")
    sweep_cmd.add_argument("--n-eval", type=int, default=evaluation.EVAL_SAMPLES,
                           help=f"generated images scored per job (default {evaluation.EVAL_SAMPLES})")
    sweep_cmd.add_argument("--dir", default=None, help="sweep directory (default sweeps/<model>-e<epochs>-seed<seed>); "
                           "a stopped sweep continues when given the same directory and settings")
    sweep_cmd.add_argument("--shard", default=None, metavar="K/N", help="run only shard K of N (0-based)")
    sweep_cmd.add_argument("--data-dir", default=None)
    sweep_cmd.add_argument("--no-progress", action="store_true")

    report = commands.add_parser("report", help="a study's or a sweep's results page: tables and figures from its "
                                 "finished jobs")
    report.add_argument("study_dir", nargs="+", help="the study's directory (experiments/compare_models.py writes "
                        "experiments/out/compare/<setting>) or the sweep's (gan_lab sweep writes sweeps/<...>); "
                        "several sweeps (one per model) also get one page pooling them")
    report.add_argument("--out", default=None, help="directory for report.md and its figures (default STUDY_DIR/report; "
                        "for several sweeps, the pooled page's, default report/ beside the first)")
    report.add_argument("--data-dir", default=None, help="dataset directory (the training images of the memorisation sheet)")

    serve = commands.add_parser("serve", help="explore trained runs in the browser (needs the serve extra)")
    serve.add_argument("runs_dir", nargs="?", default="runs", help="the directory of runs to serve (default runs/)")
    serve.add_argument("--port", type=port_number, default=8000, help="port (default 8000)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine "
                       "only; 0.0.0.0 opens it to your network)")

    commands.add_parser("list", help="list the registered models")

    data_cmd = commands.add_parser("data", help="download what is missing, check it, and show where each dataset is")
    data_cmd.add_argument("--dataset", default=None, help="only this dataset")
    data_cmd.add_argument("--verify", action="store_true",
                          help="check every file's SHA-256 (always done: every load verifies)")
    data_cmd.add_argument("--data-dir", default=None)
    return parser


def cmd_train(args) -> None:
    from gan_lab import config, runs

    from gan_lab import registry

    clear_steps = args.steps == NO_STEP_LIMIT
    names = [*config.run_settings(), *registry.all_settings()]
    overrides = {name: getattr(args, name) for name in names}
    if clear_steps:
        overrides["steps"] = None
    if args.resume is not None:
        if args.out is not None:
            raise UserError("--out and --resume exclude each other: a resumed run stays in its own directory")
        cfg = runs.resume_config(args.resume, {**overrides, "model": args.model}, clear=("steps",) if clear_steps else ())
    elif args.model is None:
        raise UserError("name a model to train (see `gan_lab list`), or --resume RUN_DIR")
    elif clear_steps:
        raise UserError("--steps none clears a resumed run's step limit; a new run has none unless you give one")
    else:
        cfg = config.make_config(args.model, overrides)

    def announce(run_dir: Path, step: int) -> None:  # before the first step: where to watch, and how long it is
        print(runs.describe_plan(cfg, step))
        print(f"run directory: {run_dir}  (watch it train: gan_lab serve {run_dir.parent})", flush=True)

    try:
        run_dir = runs.train_run(cfg, out=args.out, data_dir=args.data_dir, show_progress=not args.no_progress,
                                 resume=args.resume, on_start=announce)
    except runs.NothingToTrain as done:
        print(done)
        return
    print(f"run saved in {run_dir}  (samples/final.png, loss_curves.png, metrics.jsonl, config.json, checkpoints/)")


def parse_labels(text: str | None):
    if text is None:
        return None
    try:
        labels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"--labels takes class numbers separated by commas, e.g. 0,3,9; got {text!r}") from None
    if not labels:
        raise UserError(f"--labels names no class (got {text!r}); give class numbers, e.g. 0,3,9, or drop it")
    return labels


# What each kind of `sample` output reads besides the run; any other flag given with it is an error.
SAMPLE_OUTPUTS = {  # kind: (its flag, the flags it uses)
    "export": ("--n", {"seed", "labels"}),
    "gif": ("--gif", set()),
    "interpolate": ("--sheet interpolate", {"seed"}),
    "manifold": ("--sheet manifold", set()),
    "wardrobe": ("--sheet wardrobe", {"seed", "labels"}),
    "codes": ("--sheet codes", {"seed"}),
    "overview": ("no output flag", {"seed", "labels"}),  # the wardrobe, or a plain grid for a model without classes
}


def cmd_sample(args) -> None:
    from gan_lab import sheets

    chosen = [kind for kind, given in (("export", args.n is not None), ("gif", args.gif),
                                       (args.sheet, args.sheet is not None)) if given]
    if len(chosen) > 1:
        raise UserError(f"choose one output: {' or '.join(SAMPLE_OUTPUTS[kind][0] for kind in chosen)}, not both")
    kind = chosen[0] if chosen else "overview"
    flag, uses = SAMPLE_OUTPUTS[kind]
    for name, given in (("seed", args.seed is not None), ("labels", args.labels is not None)):
        if given and name not in uses:
            raise UserError(f"--{name} does not apply to {flag}; drop it")
    labels, seed = parse_labels(args.labels), 0 if args.seed is None else args.seed
    if kind == "export":
        if args.n < 1:
            raise UserError(f"--n must be at least 1, got {args.n}")
        print(f"wrote {sheets.export(args.run_dir, args.n, seed, args.out, labels)}")
    elif kind == "gif":
        print(f"wrote {sheets.epoch_gif(args.run_dir, args.out)}")
    elif kind == "interpolate":
        print(f"wrote {sheets.interpolation(args.run_dir, seed, args.out)}")
    elif kind == "manifold":
        print(f"wrote {sheets.manifold(args.run_dir, args.out)}")
    elif kind == "codes":
        print(f"wrote {sheets.code_walks(args.run_dir, seed, args.out)}")
    elif kind == "wardrobe":
        print(f"wrote {sheets.wardrobe(args.run_dir, seed, labels, args.out)}")
    else:
        print(f"wrote {sheets.overview(args.run_dir, seed, labels, args.out)}")


def cmd_compare(args) -> None:
    import time

    from gan_lab import runs, sheets

    settings = {k: v for k, v in {"epochs": args.epochs, "steps": args.steps, "width": args.width,
                                  "subset": args.subset}.items() if v is not None}
    out, _ = sheets.output_path(args.out or f"comparison-{time.strftime('%Y%m%d-%H%M%S')}.png", Path("."),
                                "comparison.png")  # a taken --out fails before any training
    trained = runs.find_or_train(args.models, args.datasets, args.runs_dir, settings, args.data_dir,
                                 show_progress=not args.no_progress)
    print(f"wrote {sheets.compare(trained, args.models, args.datasets, out, args.data_dir, args.seed)}")


def cmd_eval(args) -> None:
    from gan_lab import evaluation, metrics, runs

    if args.n <= metrics.NEIGHBOURS:  # each sample needs k other samples for the k-NN radii
        raise UserError(f"--n must be at least {metrics.NEIGHBOURS + 1} (precision and recall use each sample's "
                        f"{metrics.NEIGHBOURS} nearest neighbours), got {args.n}")
    results, path = runs.evaluate_run(args.run_dir, args.n, args.seed, args.data_dir)
    print("\n".join(evaluation.report_lines(results)))
    print(f"saved in {path}")


def check_at_least(*flags) -> None:
    """(flag, value, least) ...: a one-line UserError for the first value below its least."""
    for flag, value, least in flags:
        if value < least:
            raise UserError(f"{flag} must be at least {least}, got {value}")


def cmd_study(args) -> None:
    from gan_lab import config, registry, study

    models = registry.names() if args.models == ["all"] else args.models
    for name in models:
        registry.get(name)  # an unknown name: one line listing the valid ones
    config.check_datasets(args.datasets)
    check_at_least(("--seeds", args.seeds, 1), ("--sample-draws", args.sample_draws, 1), ("--n-eval", args.n_eval, 10),
                   ("--epochs", args.epochs, 1))
    training = study.training_settings(args.epochs, args.width, args.subset, args.precision)
    for name in models:  # every value checked before anything trains
        config.make_config(name, training, strict=False)
    study_dir = Path(args.dir or Path("studies") / study.setting_tag(training, args.n_eval, args.sample_draws))
    jobs = study.shard(study.plan(models, args.datasets, range(args.seeds)), args.shard)
    results = study.run_study(study_dir, jobs, training, args.n_eval, range(args.sample_draws), args.data_dir,
                              show_progress=not args.no_progress)
    print(f"{len(results)} jobs done in {study_dir}; their results page: python -m gan_lab report {study_dir}")


def parse_fixed(model: str, pairs: list[str]) -> dict:
    """--fix NAME=VALUE ...: each value read as its setting's type."""
    from gan_lab import config, registry, sweep

    searched, fixed = sweep.search_space(model), {}
    for pair in pairs:
        name, _, text = pair.partition("=")
        name = name.strip().lstrip("-").replace("-", "_")
        if name not in searched:
            raise UserError(f"--fix {pair!r}: {model} searches {', '.join(searched)}; give NAME=VALUE with one of them")
        kind = config.setting_type(name) if name in config.FIELDS else type(registry.get(model).settings[name].default)
        try:
            fixed[name] = kind(text)
        except ValueError:
            raise UserError(f"--fix {pair!r}: {text!r} is not a {kind.__name__}") from None
    return fixed


def cmd_sweep(args) -> None:
    from gan_lab import config, registry, study, sweep

    registry.get(args.model)  # an unknown name: one line listing the valid ones
    config.check_datasets(args.datasets)
    check_at_least(("--trials", args.trials, 1), ("--n-eval", args.n_eval, 10), ("--epochs", args.epochs, 1))
    trials = sweep.draw_trials(args.model, args.trials, args.seed, parse_fixed(args.model, args.fix))
    budget = {"epochs": args.epochs, "subset": args.subset, "log_every": 50}
    for trial in trials:  # every drawn value checked before anything trains
        config.make_config(args.model, {**trial.settings, **budget}, strict=False)
    sweep_dir = Path(args.dir or Path("sweeps") / f"{args.model}-e{args.epochs}-seed{args.seed}")
    sweep.fix_settings(sweep_dir, args.model, {**budget, "n_eval": args.n_eval}, args.seed, trials)
    jobs = study.shard(sweep.plan(trials, args.datasets), args.shard)
    results = sweep.run_sweep(sweep_dir, args.model, jobs, budget, args.seed, args.n_eval, args.data_dir,
                              show_progress=not args.no_progress)
    print(f"{len(results)} jobs done in {sweep_dir} ({len(trials)} settings x {len(args.datasets)} datasets); "
          f"its answers and pictures: python -m gan_lab report {sweep_dir}")


def cmd_report(args) -> None:
    from gan_lab import report, sweep, sweep_report

    directories = [Path(name) for name in args.study_dir]
    if len(directories) == 1:
        directory = directories[0]
        page = (sweep_report if (directory / sweep.SWEEP_FILE).exists() else report).write(directory, args.out,
                                                                                            args.data_dir)
    else:
        not_sweeps = [str(d) for d in directories if not (d / sweep.SWEEP_FILE).exists()]
        if not_sweeps:
            raise UserError(f"{', '.join(not_sweeps)}: not a sweep directory (no {sweep.SWEEP_FILE}); several "
                            "directories are pooled only when each is a sweep; report a study alone")
        page = sweep_report.write_pooled(directories, args.out or directories[0].parent / "report", args.data_dir)
    print(f"wrote {page}")


def cmd_serve(args) -> None:
    try:
        from gan_lab import serve
    except ImportError as err:
        raise UserError(f"gan_lab serve needs the serve extra ({err.name} is missing): "
                        'pip install -e ".[serve]"') from None
    serve.serve(args.runs_dir, args.host, args.port)


def cmd_list(args) -> None:
    from gan_lab import config, registry

    recipes = [registry.get(name) for name in registry.names()]
    for family in registry.FAMILIES:
        print(f"{family}:")
        for recipe in (r for r in recipes if r.family == family):
            print(f"  {recipe.name:12s} {recipe.description}")
            for preset, values in recipe.presets.items():
                shown = ", ".join(f"{config.flag(k)} {v:g}" if isinstance(v, float) else f"{config.flag(k)} {v}"
                                  for k, v in values.items())
                print(f"  {'':12s}   --preset {preset}: {shown}")
            if recipe.shortfall:
                print(f"  {'':12s}   ! {recipe.shortfall}")


def cmd_data(args) -> None:
    from gan_lab import config, data

    if args.dataset is not None:
        config.check_datasets([args.dataset])
    for name in [args.dataset] if args.dataset else data.DATASETS:
        for split in ("train", "test"):
            data.load_split(name, split, args.data_dir)  # downloads what is missing, checks every file
        # load_split has just checked every file, so the report can say so (hashes are cached).
        for line in data.describe(name, args.data_dir, verify=True):
            print(line)


COMMANDS = {"train": cmd_train, "sample": cmd_sample, "compare": cmd_compare, "eval": cmd_eval, "study": cmd_study,
            "sweep": cmd_sweep, "report": cmd_report, "serve": cmd_serve, "list": cmd_list, "data": cmd_data}


def stopping_signal(stop: KeyboardInterrupt) -> signal.Signals:
    """The signal behind a stop: the one the training loop deferred (trainer.Interrupted), else Ctrl-C's."""
    return signal.Signals(getattr(stop, "signum", signal.SIGINT))


def main(argv=None) -> int:
    """Run one command; returns the exit code (0, 2 for a user error, 128 + signal when stopped by
    one). Never exits the process, so programs and tests can call it in-process."""
    from gan_lab.data import DataError

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # argparse: --help (0) or a usage error, already printed on one line
        return exit_.code if isinstance(exit_.code, int) else 2
    try:
        if distributed.requested():  # one of several processes (gan_lab/distributed.py)
            distributed.initialize()
        if runtime.APPLIED.get("error"):
            raise UserError(runtime.APPLIED["error"])
        COMMANDS[args.command](args)
    except (UserError, DataError) as err:
        sys.stdout.flush()
        sys.stderr.write(f"{PROG}: error: {err}\n")
        sys.stderr.flush()
        return 2
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM/SIGHUP deferred by the training loop
        signum = stopping_signal(stop)
        sys.stderr.write(f"{PROG}: stopped by {signum.name}\n")
        return 128 + signum
    return 0


def run() -> None:
    """The program's entry point (`python -m gan_lab`, `gan-lab`): main(), then leave.

    After a user error the process leaves at once with stderr silenced: a failed Orbax restore leaves
    I/O threads that print tracebacks (right away or at interpreter shutdown), and the user must see
    gan_lab's one line only.
    """
    if distributed.requested() and not distributed.is_worker():
        sys.exit(distributed.supervise(sys.argv[1:]))  # the work runs in a child process it watches
    runtime.configure()  # this program's process settings, before JAX starts (gan_lab/runtime.py)
    code = main()
    if code == 2:
        sys.stdout.flush()
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
        os._exit(code)
    sys.exit(code)
