"""A sweep: N settings of one model drawn at random (seeded) from the search ranges its settings
declare (config.Search), each trained on every dataset of the sweep with the same budget and
training seed (a paired design: one setting, both datasets), scored, and written as soon as it ends.

The search space is derived, not listed: every run setting and every one of the model's own
settings that declares a `search` range (a learning rate log-uniformly within 10x of the model's
default, Adam's betas, the batch size, the width as network complexity, the loss, the critic steps,
a penalty's weight, ...). Trial k's settings depend only on (sweep seed, k), so a sweep extended from
N to 2N trials keeps its first N.

Each (trial, dataset) is a job of gan_lab/study.py in SWEEP_DIR/trial<k>/: an ordinary run directory,
with its scores in result.json once it ends; a stopped sweep continues where it stopped (a cut job
resumes from its checkpoint, a finished one is never trained or scored again), and `--shard K/N`
splits the jobs over processes or hosts that share the directory.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from gan_lab import config as config_lib
from gan_lab import files, registry, study
from gan_lab.errors import UserError

SWEEP_FILE = "sweep.json"  # the sweep's settings and its trials' settings, fixed when it starts


class Trial(NamedTuple):
    index: int
    settings: dict  # the drawn values, by setting name

    @property
    def name(self) -> str:
        return f"trial{self.index:03d}"


def search_space(model: str) -> dict[str, config_lib.Search]:
    """Every setting of `model` that declares a search range, run settings first, by name."""
    recipe = registry.get(model)
    declared = {**config_lib.run_settings(), **recipe.settings}
    return {name: setting.search for name, setting in declared.items() if setting.search is not None}


def draw_trials(model: str, n: int, seed: int = 0, fixed: dict | None = None) -> list[Trial]:
    """Trials 0..n-1: trial k draws every searched setting from its own generator, seeded by
    (seed, k), around the model's defaults; `fixed` settings then replace their draws (so fixing one
    setting leaves every other draw as it was)."""
    defaults = config_lib.make_config(model, {})
    trials = []
    for index in range(n):
        rng = np.random.default_rng([seed, index])
        drawn = {name: search.draw(rng, getattr(defaults, name)) for name, search in search_space(model).items()}
        drawn = {k: v.item() if isinstance(v, np.generic) else v for k, v in drawn.items()}
        trials.append(Trial(index, {**drawn, **(fixed or {})}))
    return trials


class SweepJob(NamedTuple):
    trial: Trial
    dataset: str

    @property
    def name(self) -> str:
        return f"{self.trial.name}/{self.dataset}"


def plan(trials: list[Trial], datasets) -> list[SweepJob]:
    """Trial-major: both datasets of a setting before the next setting, so a stopped sweep has pairs."""
    return [SweepJob(trial, dataset) for trial in trials for dataset in datasets]


def fix_settings(sweep_dir: Path, model: str, budget: dict, seed: int, trials: list[Trial]) -> None:
    """Record the sweep when it starts; refuse to continue it with another budget, model or seed.
    More trials than before is fine (the earlier ones are the same draws)."""
    path = sweep_dir / SWEEP_FILE
    settings = {"model": model, "budget": budget, "seed": seed}
    drawn = [trial.settings for trial in trials]
    if path.exists():
        saved = json.loads(path.read_text())
        common = min(len(saved["trials"]), len(drawn))
        if {k: saved[k] for k in settings} != settings or saved["trials"][:common] != drawn[:common]:
            differ = [k for k in settings if saved[k] != settings[k]] or ["the drawn settings (--fix?)"]
            raise UserError(f"{sweep_dir} is a sweep with other settings ({', '.join(differ)} differ); continue it "
                            "with those, or give another --dir")
        drawn = drawn if len(drawn) >= len(saved["trials"]) else saved["trials"]
    sweep_dir.mkdir(parents=True, exist_ok=True)
    files.replace_atomically(path, json.dumps({**settings, "trials": drawn}, indent=2) + "\n")


def run_job(sweep_dir: Path, job: SweepJob, model: str, budget: dict, seed: int, n_eval: int, data_dir=None) -> dict:
    """The job's result: read if it has one, else trained (or resumed) and scored, and written. The
    trial's settings go over the model's defaults; the budget's over those."""
    training = {**job.trial.settings, **budget}
    return study.run_job(sweep_dir / job.trial.name, study.Job(model, job.dataset, seed), training, n_eval, (0,),
                         data_dir, detail=False)


def run_sweep(sweep_dir: Path, model: str, jobs: list[SweepJob], budget: dict, seed: int, n_eval: int, data_dir=None,
              show_progress: bool = True) -> dict[str, dict]:
    """Every job's result, by job name (trial<k>/<dataset>); a progress bar over the whole sweep shows its ETA."""
    from tqdm.auto import tqdm

    results = {}
    with tqdm(total=len(jobs), unit="job", desc=f"sweep {model}", disable=not show_progress) as bar:
        for job in jobs:
            bar.set_postfix_str(job.name)
            started = time.perf_counter()
            results[job.name] = run_job(sweep_dir, job, model, budget, seed, n_eval, data_dir)
            fd = results[job.name]["scores"][0]["fd"]
            bar.write(f"{job.name}: FD {fd:.1f} ({time.perf_counter() - started:.0f} s)")
            bar.update()
    return results
