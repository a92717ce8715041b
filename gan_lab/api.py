"""gan_lab as a library: train, load, sample, score and draw from Python, without the command line.

Each function here calls what the matching `gan_lab` command calls (runs.train_run, config.make_config,
runs.load_trained, runs.evaluate_run, the sheets in sheets.py, sampling.export_samples), so a run
trained here is a run the CLI can resume, sample and score, and the other way round: the same
run directory, lock, resumption and never-overwrite rules, and the same one-line errors, raised
as gan_lab.errors.UserError instead of printed.

    import gan_lab

    print(gan_lab.list_models())             # ['acgan', 'began', 'cgan', ...]
    run = gan_lab.train("cgan", dataset="fashion-mnist", epochs=1, steps=200, width=0.5, out="runs/my-cgan")
    print(run)                               # <gan_lab.Run cgan on fashion-mnist, 0.21 epochs (200 steps), ...>
    images = run.sample(16, seed=0, labels=[0, 1, 2])  # uint8 (16, 28, 28): classes 0, 1, 2, 0, 1, ...
    print(run.evaluate(n=2_000)["fd"])       # also recorded in runs/my-cgan/metrics.json, as `gan_lab eval` does
    print(run.sheet("wardrobe"))             # runs/my-cgan/sheets/wardrobe-seed0.png, then -2, -3: never overwritten
    run = gan_lab.train(resume=run.dir, steps=None)  # continue it: steps=None lifts its step limit
    run = gan_lab.load("runs/my-cgan")       # a run trained earlier, here or by `gan_lab train`

train, load, list_models and Run are also gan_lab.train, gan_lab.load, gan_lab.list_models and
gan_lab.Run (imported on first use). The training loop's module is gan_lab/trainer.py, so that
gan_lab.train is this function.

The datasets come from data_dir=, else $GAN_LAB_DATA, else the user cache (downloaded when missing);
sampling and the sheets read only the run directory.

Importing gan_lab changes nothing in the process, and neither does this module: a program that
wants the CLI's speed settings (XLA:CPU flags, the allocator, the on-disk compilation cache) calls
gan_lab.runtime.configure() before anything imports JAX (gan_lab/runtime.py says what they are).
"""

from __future__ import annotations

import difflib
import numbers
import sys
from pathlib import Path

import jax

from gan_lab import config as config_lib
from gan_lab import evaluation, metrics, registry, runs, sampling, sheets
from gan_lab.errors import UserError

SHEETS = ("wardrobe", "interpolate", "manifold", "codes", "gif")  # the outputs of `sample --sheet` and `--gif`
NOISELESS_SHEETS = ("manifold", "gif")  # these draw no noise, so take no seed (the CLI refuses --seed for them)

# How a setting's Python type reads in an error message.
TYPE_WORDS = {int: "a whole number", float: "a number", str: "a string", bool: "True or False"}


def list_models() -> list[str]:
    """The registered model names, as `gan_lab list` shows them (grouped there by family)."""
    return registry.names()


def train(model: str | None = None, *, out=None, data_dir=None, progress: bool = True, resume=None,
          **settings) -> Run:
    """Train `model` in a new run directory (`out`, else runs/<model>-<dataset>-<time> under the current
    directory), or continue the run `resume` from its newest checkpoint; returns the Run.

    `settings` are those of `gan_lab train`, by their Python names: the run's (dataset, epochs, steps,
    batch_size, seed, lr, subset, ...) and the model's own (width, loss, n_critic, ...). On resume only
    those that do not change the computation may change (epochs, steps, log_every, ...), and
    steps=None lifts the run's step limit (`--steps none`). A resumed run that has already reached
    its target trains nothing: that is said on stderr and the Run returned as it is.
    """
    overrides = checked_settings(model, settings)
    if resume is not None:
        if out is not None:
            raise UserError("out and resume exclude each other: a resumed run stays in its own directory")
        clear = ("steps",) if "steps" in settings and settings["steps"] is None else ()
        cfg = runs.resume_config(Path(resume), {**overrides, "model": model}, clear=clear)
    elif model is None:
        raise UserError("name a model to train (gan_lab.list_models() lists them), or resume=RUN_DIR")
    else:
        cfg = config_lib.make_config(model, overrides)
    try:
        run_dir = runs.train_run(cfg, out=out, data_dir=data_dir, show_progress=progress, resume=resume)
    except runs.NothingToTrain as done:
        print(done, file=sys.stderr)
        run_dir = resume
    return Run(run_dir)


def checked_settings(model: str | None, settings: dict) -> dict:
    """`settings` as the CLI's parser would hand them on: every name one of `gan_lab train`'s settings
    and every value of its declared type (an int where a float is declared becomes a float, as
    `--width 1` does). Bounds and whether the model has a setting are checked by config, as for the CLI."""
    declared = {name: config_lib.setting_type(name) for name in config_lib.run_settings()}
    declared.update({name: type(setting.default) for name, (setting, _) in registry.all_settings().items()})
    for name in settings:
        if name not in declared:  # listed: the model's settings, or with no model named every model's
            valid = [*config_lib.run_settings(), *registry.get(model).settings] if model else list(declared)
            close = difflib.get_close_matches(name, valid, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise UserError(f"unknown setting {name!r}; {hint}valid settings{f' of {model}' if model else ''}: "
                            f"{', '.join(valid)}")
    return {name: typed_value(name, value, declared[name]) for name, value in settings.items()}


def typed_value(name: str, value, kind: type):
    if value is None:  # not given, as for an absent flag (steps=None on resume is handled by the caller)
        return None
    if kind is bool:
        valid = isinstance(value, bool)
    elif kind is float:
        valid = isinstance(value, numbers.Real) and not isinstance(value, bool)
    elif kind is int:
        valid = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    else:
        valid = isinstance(value, kind)
    if not valid:
        raise UserError(f"{name} must be {TYPE_WORDS.get(kind, kind.__name__)}, got {value!r}")
    if kind is bool:
        # A bool setting is a CLI switch that can only be turned on: False is the switch not given
        # (so tensorboard=False on resume keeps a run's events on, as leaving out --tensorboard does).
        return True if value else None
    return kind(value)  # plain Python numbers (numpy's too), as saved in config.json


def load(run_dir) -> Run:
    """The run in `run_dir` (trained here or by `gan_lab train`); needs no training data."""
    return Run(run_dir)


class Run:
    """A run directory. Sampling and the sheets use its newest readable checkpoint, read when first
    needed and again once a newer checkpoint appears (a run trained on meanwhile)."""

    def __init__(self, run_dir):
        self.dir = Path(run_dir)
        runs.check_run_dir(self.dir)  # no such directory: the CLI's one line
        config_lib.load(self.dir / "config.json")  # not a run directory: a one-line UserError now, not at first use
        self._loaded = None  # (newest checkpoint step, runs.TrainedRun)

    @property
    def config(self) -> config_lib.Config:
        """The run's resolved settings (its config.json, as it stands now)."""
        return config_lib.load(self.dir / "config.json")

    def __repr__(self) -> str:
        try:
            cfg = self.config
        except UserError:  # the directory changed since: a repr must not raise
            return f"<gan_lab.Run in {self.dir}, its config.json unreadable>"
        step = runs.newest_step(self.dir)
        progress = "no checkpoint yet" if step is None else f"{runs.describe_progress(cfg, step)} ({step} steps)"
        return f"<gan_lab.Run {cfg.model} on {cfg.dataset}, {progress}, seed {cfg.seed}, in {self.dir}>"

    def _trained(self) -> runs.TrainedRun:
        """The model and state of the run's newest readable checkpoint."""
        newest = runs.newest_step(self.dir)
        if self._loaded is None or self._loaded[0] != newest:
            self._loaded = (newest, runs.load_trained(self.dir))
        return self._loaded[1]

    def sample(self, n: int, seed: int = 0, labels=None):
        """n images as uint8 (n, 28, 28), exactly those `gan_lab sample --n N --seed SEED` exports.
        labels (conditional models only): the classes to draw, repeated in turn up to n; by default
        0..9 in turn."""
        if n < 1:
            raise UserError(f"n must be at least 1, got {n}")
        labels = class_list(labels)
        run = self._trained()
        sampling.check_labels(run.model, labels, run.cfg.model)
        images, _ = sampling.export_samples(run.model, run.state, jax.random.key(seed), n, labels)
        return images

    def evaluate(self, n: int = evaluation.EVAL_SAMPLES, seed: int = 0, *, data_dir=None) -> dict:
        """Scores of n generated images against the test set (fd, kd, precision, recall, coverage, ...),
        as `gan_lab eval` computes them, and recorded like it in the run's metrics.json."""
        if n <= metrics.NEIGHBOURS:  # each sample needs k other samples for the k-NN radii
            raise UserError(f"n must be at least {metrics.NEIGHBOURS + 1} (precision and recall use each sample's "
                            f"{metrics.NEIGHBOURS} nearest neighbours), got {n}")
        results, _ = runs.evaluate_run(self.dir, n, seed, data_dir)
        return results

    def sheet(self, kind: str, seed: int = 0, out=None, *, labels=None) -> Path:
        """Write a picture of `gan_lab sample --sheet KIND` (or `--gif`) and return its path: by default
        RUN_DIR/sheets/<kind>-seed<seed>.png, numbered -2, -3, ... rather than overwriting; a given
        `out` that exists is an error. labels: the wardrobe's rows (conditional models)."""
        if kind not in SHEETS:
            raise UserError(f"unknown sheet {kind!r}; valid sheets: {', '.join(SHEETS)}")
        if labels is not None and kind != "wardrobe":
            raise UserError(f"labels apply to the wardrobe sheet only, not to {kind!r}; drop them")
        if seed != 0 and kind in NOISELESS_SHEETS:
            raise UserError(f"seed does not apply to the {kind} sheet (it draws no noise); drop it")
        if kind == "wardrobe":
            return sheets.wardrobe(self.dir, seed, class_list(labels), out)
        if kind == "interpolate":
            return sheets.interpolation(self.dir, seed, out)
        if kind == "manifold":
            return sheets.manifold(self.dir, out)
        if kind == "codes":
            return sheets.code_walks(self.dir, seed, out)
        return sheets.epoch_gif(self.dir, out)


def class_list(labels) -> list[int] | None:
    """labels as a list of class numbers (None stays None); the range is checked by sampling.check_labels."""
    if labels is None:
        return None
    labels = list(labels)
    if not labels:
        raise UserError("labels names no class; give class numbers, e.g. [0, 3, 9], or None")
    for label in labels:
        if not isinstance(label, numbers.Integral) or isinstance(label, bool):
            raise UserError(f"labels are class numbers, e.g. [0, 3, 9]; got {label!r}")
    return [int(label) for label in labels]
