"""A study: every (model, dataset, training seed) trained with one budget and scored, one job at a time.

Each job is an ordinary run directory under the study directory (STUDY_DIR/<model>-<dataset>-seed<k>),
trained by runs.train_run, so everything a run guarantees holds for a job: checkpoints during training,
Ctrl-C/SIGTERM saving before exit, `--resume` after a kill. A job's scores are written to its
result.json as soon as it ends; a study started again skips jobs with a result, resumes a job that
was cut short from its newest checkpoint, and scores a job whose training had finished. Nothing is
counted twice: a job's result is its own file, written once.

The budget is the same number of training images for every model (an epoch is the whole training
set, whatever the model's batch size or critic steps). Each result records the training wall time
and steps/s (compilation included), so quality per second can be read beside quality per epoch.

Scores: each trained model is scored with `sample_seeds` independent sample draws (10,000 images
each by default) against the test set, so the spread over sample draws can be told apart from the
spread over training seeds (issue 12).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from gan_lab import config as config_lib
from gan_lab import data, evaluation, files, runs
from gan_lab.errors import UserError

STUDY_FILE = "study.json"  # the study's settings, fixed when it starts
RESULT_FILE = "result.json"  # a finished job's scores, in its run directory
ADOPTED_FILE = "adopted.json"  # in a job's run directory: the run was trained elsewhere (adopt_run)
CHECKPOINT_EVERY = 200  # steps: a killed job loses at most this much training
# The CPU setting: every registered model x 2 datasets x 3 seeds trains within 3 hours on a 2-core
# CPU. One epoch (60,000 images) at half width, each trained model scored on 2 independent draws of
# 10,000 samples. The collections' (GPU) setting is 25 epochs on MNIST, 40 on Fashion-MNIST, width 1.
CPU_EPOCHS, CPU_WIDTH, CPU_DRAWS = 1, 0.5, 2


class Job(NamedTuple):
    model: str
    dataset: str
    seed: int  # the training seed

    @property
    def name(self) -> str:
        return f"{self.model}-{self.dataset}-seed{self.seed}"


def training_settings(epochs: int, width: float, subset: int | None, precision: str = "f32") -> dict:
    """The run settings every job of a study trains with (those that apply to each model). The
    precision is recorded only when it is not the default, so studies made before it existed continue."""
    training = {"epochs": epochs, "width": width, "subset": subset, "log_every": 50}
    return training if precision == "f32" else {**training, "precision": precision}


def setting_tag(training: dict, n_eval: int, draws: int) -> str:
    """A study setting's short name, e.g. e1-w0.5-sNone-ev10000x2 (-bf16 under mixed precision): its
    default directory name and the key of its kept results."""
    tag = f"e{training['epochs']}-w{training['width']}-s{training['subset']}-ev{n_eval}x{draws}"
    return tag if training.get("precision", "f32") == "f32" else f"{tag}-{training['precision']}"


def study_settings(training: dict, n_eval: int, sample_seeds) -> dict:
    """What a study directory records as its settings (fix_settings)."""
    return {"training": training, "n_eval": n_eval, "sample_seeds": list(sample_seeds)}


def plan(models, datasets, seeds) -> list[Job]:
    """Seed-major order: every model's first seed on both datasets before any second seed, so a study
    stopped early already compares every model."""
    return [Job(model, dataset, seed) for seed in seeds for dataset in datasets for model in models]


def shard(jobs: list[Job], spec: str | None) -> list[Job]:
    """The jobs of shard "K/N": every N-th job from the K-th (0-based), so N processes or hosts sharing
    the study directory each run their own jobs, each job written in its own directory. None: all."""
    if spec is None:
        return jobs
    try:
        index, count = (int(part) for part in spec.split("/"))
    except ValueError:
        index = count = -1
    if not 0 <= index < count:
        raise UserError(f"--shard {spec!r}: give K/N with 0 <= K < N, e.g. 0/2 and 1/2 on two hosts")
    return jobs[index::count]


def job_config(job: Job, training: dict):
    """The job's run config: the study's training settings (those that apply to the model)."""
    return config_lib.make_config(job.model, {**training, "dataset": job.dataset, "seed": job.seed,
                                              "checkpoint_every": CHECKPOINT_EVERY}, strict=False)


def settings_changed(saved_record: dict, job: Job, training: dict) -> list[str]:
    """The settings in which a run saved as `saved_record` (its config.json) differs from what `job`
    would train with today, e.g. after a model's default changed (none: the run is current)."""
    return config_lib.differing_fields(config_lib.from_saved(saved_record), job_config(job, training))


def stale_jobs(study_dir: Path, jobs: list[Job], training: dict) -> dict[Job, list[str]]:
    """{job: the settings that changed} for each job run whose saved settings are no longer what the job
    would train with today, e.g. after a model's default changed: its result is not this setting's."""
    stale = {}
    for job in jobs:
        saved = Path(study_dir) / job.name / "config.json"
        if saved.exists():  # config.load: an unreadable config is a one-line error naming the file
            changed = config_lib.differing_fields(config_lib.load(saved), job_config(job, training))
            if changed:
                stale[job] = changed
    return stale


def set_aside_stale(study_dir: Path, jobs: list[Job], training: dict) -> list[Job]:
    """Move each stale job run (stale_jobs) aside to <job>.stale-<n>, nothing deleted, so the study
    trains it again; one that another process is training now is left where it is (and not counted:
    finished() skips stale results). Returns the jobs moved."""
    moved = []
    for job, changed in stale_jobs(study_dir, jobs, training).items():
        run_dir = Path(study_dir) / job.name
        if files.RunLock.held_elsewhere(run_dir):
            continue
        n = 1
        while run_dir.with_name(f"{job.name}.stale-{n}").exists():
            n += 1
        run_dir.rename(run_dir.with_name(f"{job.name}.stale-{n}"))
        print(f"{job.name}: trained with other settings than today's ({', '.join(changed)}): moved to "
              f"{job.name}.stale-{n}; the study trains it again", flush=True)
        moved.append(job)
    return moved


def fix_settings(study_dir: Path, settings: dict) -> None:
    """Record the study's settings when it starts; refuse to continue it with other ones (its results
    would not be comparable)."""
    path = study_dir / STUDY_FILE
    if path.exists():
        saved = json.loads(path.read_text())
        if saved != settings:
            changed = sorted(k for k in settings.keys() | saved.keys() if settings.get(k) != saved.get(k))
            raise UserError(f"{study_dir} is a study with other settings ({', '.join(changed)} differ: "
                            f"{ {k: saved.get(k) for k in changed} }); continue it with those, or give another "
                            "study directory")
        return
    study_dir.mkdir(parents=True, exist_ok=True)
    files.replace_atomically(path, json.dumps(settings, indent=2) + "\n")


def training_seconds(run_dir: Path) -> tuple[float, int]:
    """(wall seconds spent training, number of training sessions) from metrics.jsonl: each record
    carries its session's number and the time since that session started (compilation included), so a
    resumed job adds up its sessions' last times."""
    session_seconds, session, previous = {}, 0, None
    for record in runs.read_metrics(run_dir):
        if "time" not in record:
            continue
        if "session" in record:
            session = record["session"]
        elif previous is None or record["time"] < previous:  # records written before sessions were numbered
            session += 1
        session_seconds[session] = previous = record["time"]
    return sum(session_seconds.values()), len(session_seconds)


def train_job(study_dir: Path, job: Job, training: dict, data_dir=None, show_progress: bool = False) -> Path:
    """Train the job's run to its end: a new run, or the resumption of one cut short."""
    run_dir = study_dir / job.name
    cfg = job_config(job, training)
    if (run_dir / "config.json").exists():
        try:
            # To the study's budget, whatever limit the run had when it stopped (--steps is resumable).
            budget = {"epochs": cfg.epochs, "steps": cfg.steps}
            resumed = runs.resume_config(run_dir, budget, clear=("steps",) if cfg.steps is None else ())
            runs.train_run(resumed, data_dir=data_dir, show_progress=show_progress, resume=run_dir)
        except runs.NothingToTrain:
            pass  # trained to its end before it was stopped: only the scoring is left
    else:
        runs.train_run(cfg, out=run_dir, data_dir=data_dir, show_progress=show_progress)
    return run_dir


def adopt_run(study_dir: Path, job: Job, training: dict, donor_dirs) -> Path | None:
    """Copy into the study a run trained elsewhere with exactly this job's settings, whose newest
    checkpoint is the job's last step, so the same training is not done twice: e.g. learning_curves.py's
    seed-0 runs are the 4-epoch study's seed-0 jobs, trained in legs that resume bit for bit. A donor is
    `<donor dir>/<job name>` with the job's saved settings (settings_changed) and not being trained by
    another process now (its run lock); the copy is taken only if its own newest checkpoint is still the
    job's last step (a donor trained on, e.g. to a later curve point, is left alone) and every copy
    problem skips the donor. Returns the donor, or None (then the job trains as usual)."""
    study_dir = Path(study_dir)
    target = study_dir / job.name
    if target.exists():
        return None
    last_step = config_lib.total_steps(job_config(job, training))
    for donor in (Path(d).resolve() / job.name for d in donor_dirs):
        try:
            record = json.loads((donor / "config.json").read_text())
        except (OSError, ValueError):
            continue
        if (settings_changed(record, job, training) or runs.newest_step(donor) != last_step
                or files.RunLock.held_elsewhere(donor)):
            continue
        study_dir.mkdir(parents=True, exist_ok=True)
        # A private name until the copy is checked: a copy cut short or racing another is never taken for a run.
        partial = Path(tempfile.mkdtemp(dir=study_dir, prefix=f"{job.name}.adopting-")) / job.name
        try:
            shutil.copytree(donor, partial, ignore=shutil.ignore_patterns(files.RunLock.NAME))
            if runs.newest_step(partial) != last_step:  # the donor trained on while it was copied
                raise OSError(f"{donor} moved past step {last_step}")
            # Named <setting>/<job>: the result is kept in the repository, where this machine's path means nothing.
            files.replace_atomically(partial / ADOPTED_FILE, json.dumps({"from": f"{donor.parent.name}/{donor.name}"}) + "\n")
            partial.rename(target)
        except (OSError, shutil.Error):
            continue
        finally:
            shutil.rmtree(partial.parent, ignore_errors=True)
        return donor
    return None


def trained_here(results) -> list[dict]:
    """The results whose training the study timed itself: an adopted run's wall time is its donor's
    (a learning curve's legs, each with its own compilation), not a comparable cost."""
    return [result for result in results if "adopted_from" not in result]


def score_job(run_dir: Path, job: Job, n_eval: int, sample_seeds, data_dir=None, detail: bool = True) -> dict:
    """The job's result: every metric for each sample draw, and what the training cost. detail=False
    leaves out the per-class metrics and the memorisation check (a sweep's jobs need neither)."""
    trained = runs.load_trained(run_dir)
    cfg, model, state, step = trained
    elbo = evaluation.elbo_scorer(cfg, model, data_dir)
    # The first draw also gets the per-class metrics and the memorisation check (one draw is enough
    # for them).
    scores = [evaluation.score(cfg, model, state, n_eval, seed, elbo, data_dir, detail=detail and i == 0)
              for i, seed in enumerate(sample_seeds)]
    seconds, sessions = training_seconds(run_dir)
    images = step * cfg.batch_size * model.batches_per_step
    adopted = Path(run_dir) / ADOPTED_FILE
    return {"job": job._asdict(), "steps": step, "training_images": images,
            "epochs": images / (cfg.subset or data.SPLIT_SIZES["train"]),
            "train_seconds": seconds, "training_sessions": sessions, "steps_per_sec": step / seconds if seconds else None,
            "sample_seeds": list(sample_seeds), "scores": scores,
            **({"adopted_from": json.loads(adopted.read_text())["from"]} if adopted.exists() else {})}


def run_job(study_dir: Path, job: Job, training: dict, n_eval: int, sample_seeds, data_dir=None,
            detail: bool = True, adopt_from=()) -> dict:
    """A job's result: read if it has one, else adopted (adopt_run) or trained (or resumed), scored, and
    written."""
    path = study_dir / job.name / RESULT_FILE
    if path.exists():
        return json.loads(path.read_text())
    adopt_run(study_dir, job, training, adopt_from)
    run_dir = train_job(study_dir, job, training, data_dir)
    result = score_job(run_dir, job, n_eval, sample_seeds, data_dir, detail)
    files.replace_atomically(path, json.dumps(result, indent=2) + "\n")
    return result


def finished(study_dir: Path, jobs: list[Job], training: dict | None = None) -> dict[Job, dict]:
    """The results of the jobs that have one in the study directory; given the study's `training`, not
    those of stale runs (stale_jobs), which are no result of this setting."""
    stale = stale_jobs(study_dir, jobs, training) if training is not None else {}
    paths = {job: Path(study_dir) / job.name / RESULT_FILE for job in jobs if job not in stale}
    return {job: json.loads(path.read_text()) for job, path in paths.items() if path.exists()}


def run_study(study_dir: Path, jobs: list[Job], training: dict, n_eval: int, sample_seeds, data_dir=None,
              show_progress: bool = True, on_result=None, adopt_from=()) -> dict[Job, dict]:
    """Every job's result, training and scoring those without one. A progress bar over the whole
    study shows its ETA. `on_result(job, result)` is called as each new job ends, e.g. to keep it
    somewhere that outlives this machine's study directory. `adopt_from`: directories whose finished
    runs a job takes instead of training (adopt_run)."""
    from tqdm.auto import tqdm

    study_dir = Path(study_dir)
    fix_settings(study_dir, study_settings(training, n_eval, sample_seeds))
    set_aside_stale(study_dir, jobs, training)
    results = finished(study_dir, jobs, training)
    pending = [job for job in jobs if job not in results]
    with tqdm(total=len(jobs), initial=len(jobs) - len(pending), unit="job", desc="study",
              disable=not show_progress) as bar:
        for job in pending:
            bar.set_postfix_str(job.name)
            started = time.perf_counter()
            results[job] = run_job(study_dir, job, training, n_eval, sample_seeds, data_dir, adopt_from=adopt_from)
            if on_result is not None:
                on_result(job, results[job])
            fd = sum(s["fd"] for s in results[job]["scores"]) / len(results[job]["scores"])
            # A resumed job's training seconds add up all its sessions; the wall time is this invocation's.
            trained = (f"adopted from {results[job]['adopted_from']}" if "adopted_from" in results[job]
                       else f"trained {results[job]['train_seconds']:.0f} s in all")
            bar.write(f"{job.name}: FD {fd:.1f}, {trained} ({time.perf_counter() - started:.0f} s here, scoring included)")
            bar.update()
    return {job: results[job] for job in jobs}
