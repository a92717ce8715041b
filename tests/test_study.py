"""gan_lab/study.py: one job per (model, dataset, seed), written when it ends, continued where it stopped."""

import json
import shutil
import sys
from pathlib import Path

import pytest

from gan_lab import evaluation, files, report, runs, study
from gan_lab.errors import UserError
from tests.helpers import TINY

TRAINING = {**TINY, "epochs": 1, "subset": 128}  # 4 steps of 32 images
N_EVAL, SAMPLE_SEEDS = 200, (0, 1)
MEMORISATION_TRAINING_IMAGES = 2048  # the detailed scores' training set, cut for these plumbing tests


@pytest.fixture(autouse=True, scope="module")
def small_training_set_for_memorisation(tmp_path_factory):
    """The memorisation check compares samples with the training set's features: all 60,000 images cost
    ~30 s of evaluator time, which checks nothing more about the study's plumbing than 2,048 do. The
    features are kept in this module's own cache directory, so no other test sees the cut set."""
    from gan_lab import evaluation, metrics

    with_training_set = metrics.with_training_set
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(metrics, "with_training_set",
                      lambda real, train: with_training_set(real, train[:MEMORISATION_TRAINING_IMAGES]))
        patch.setenv(evaluation.CACHE_ENV, str(tmp_path_factory.mktemp("features")))
        evaluation._test_reference.cache_clear(), evaluation._with_training_set.cache_clear()
        yield
        evaluation._test_reference.cache_clear(), evaluation._with_training_set.cache_clear()


def test_training_seconds_adds_up_the_sessions_of_a_resumed_run(tmp_path):
    records = [{"step": 1, "time": 5.0, "session": 1}, {"step": 2, "time": 7.0, "session": 1},  # killed after step 2
               # session 2 compiled slower than session 1 trained: its times are not smaller
               {"step": 2, "time": 8.0, "session": 2}, {"step": 3, "time": 9.5, "session": 2},
               {"step": 3, "fd": 12.0}]  # an evaluation record has no time
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert study.training_seconds(tmp_path) == (7.0 + 9.5, 2)


def test_plan_is_seed_major():
    jobs = study.plan(["dcgan", "vae"], ["mnist", "fashion-mnist"], range(2))
    assert [j.seed for j in jobs] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert jobs[0].name == "dcgan-mnist-seed0"


def test_shards_split_the_jobs_between_processes():
    jobs = study.plan(["dcgan", "vae", "cgan"], ["mnist", "fashion-mnist"], range(3))
    parts = [study.shard(jobs, f"{k}/4") for k in range(4)]
    assert sorted(job for part in parts for job in part) == sorted(jobs)  # each job in exactly one shard
    assert {len(part) for part in parts} == {4, 5}
    assert study.shard(jobs, None) == jobs
    for bad in ("2/2", "1", "a/b", "-1/2"):
        with pytest.raises(UserError, match="give K/N with 0 <= K < N"):
            study.shard(jobs, bad)


def test_a_study_writes_each_job_resumes_a_cut_job_and_never_trains_twice(tmp_path, data_dir):
    # vae-mlp: the study's mechanics are the same for every model, and its step compiles in a moment.
    jobs = study.plan(["vae-mlp"], ["mnist"], range(2))
    # Job seed1 was stopped after 2 of its 4 steps (as a kill after a checkpoint leaves it).
    cut = study.job_config(jobs[1], {**TRAINING, "steps": 2})
    runs.train_run(cut, out=tmp_path / jobs[1].name, data_dir=data_dir, show_progress=False)

    reported = {}
    results = study.run_study(tmp_path, jobs, TRAINING, N_EVAL, SAMPLE_SEEDS, data_dir, show_progress=False,
                              on_result=reported.__setitem__)
    assert reported == results  # each new job handed over as it ended
    for job in jobs:
        result = json.loads((tmp_path / job.name / study.RESULT_FILE).read_text())
        assert result == results[job]
        assert result["steps"] == 4 and result["training_images"] == 128 and result["epochs"] == 128 / 128
        assert len(result["scores"]) == len(SAMPLE_SEEDS)
        assert result["scores"][0]["fd"] != result["scores"][1]["fd"]  # two independent sample draws
        assert result["train_seconds"] > 0
    assert results[jobs[1]]["training_sessions"] == 2 and results[jobs[0]]["training_sessions"] == 1
    assert runs.load_trained(tmp_path / jobs[1].name).step == 4  # resumed to the end, not restarted

    # The results page from the real jobs, with the memorisation sheet drawn from their checkpoints.
    page = report.write(tmp_path, tmp_path / "report", data_dir)
    assert "| vae-mlp | 2 |" in page.read_text()
    assert (tmp_path / "report" / "nearest-training-mnist.png").stat().st_size > 5_000

    # Run again: every job has its result, so nothing is trained or scored again.
    stamps = {job: (tmp_path / job.name / study.RESULT_FILE).stat().st_mtime_ns for job in jobs}
    again = study.run_study(tmp_path, jobs, TRAINING, N_EVAL, SAMPLE_SEEDS, data_dir, show_progress=False,
                            on_result=lambda job, result: pytest.fail(f"{job.name} was run again"))
    assert again == results
    assert stamps == {job: (tmp_path / job.name / study.RESULT_FILE).stat().st_mtime_ns for job in jobs}

    # The same directory with another budget is refused: its results would not be comparable.
    with pytest.raises(UserError, match="other settings"):
        study.run_study(tmp_path, jobs, {**TRAINING, "epochs": 2}, N_EVAL, SAMPLE_SEEDS, data_dir, show_progress=False)


def test_a_job_whose_training_ended_before_its_scoring_is_only_scored(tmp_path, data_dir):
    job = study.Job("vae-mlp", "mnist", 0)
    runs.train_run(study.job_config(job, TRAINING), out=tmp_path / job.name, data_dir=data_dir, show_progress=False)
    before = (tmp_path / job.name / "metrics.jsonl").read_text()
    result = study.run_job(tmp_path, job, TRAINING, N_EVAL, SAMPLE_SEEDS, data_dir)
    assert result["steps"] == 4 and result["training_sessions"] == 1
    assert (tmp_path / job.name / "metrics.jsonl").read_text() == before  # not trained again


def test_study_and_report_commands(tmp_path, data_dir, capsys):
    """The CLI end to end: a one-job study, then its results page."""
    from gan_lab import cli

    argv = ["study", "--models", "vae-mlp", "--datasets", "mnist", "--seeds", "1", "--n-eval", "200",
            "--subset", "256", "--dir", str(tmp_path / "s"), "--data-dir", str(data_dir), "--no-progress"]
    assert cli.main(argv) == 0
    assert "1 jobs done" in capsys.readouterr().out
    assert (tmp_path / "s" / "vae-mlp-mnist-seed0" / study.RESULT_FILE).exists()
    assert cli.main(["report", str(tmp_path / "s"), "--data-dir", str(data_dir)]) == 0
    assert "| vae-mlp | 1 |" in (tmp_path / "s" / "report" / "report.md").read_text()



def test_a_comparison_at_another_budget_writes_its_own_pages_not_the_documented_ones():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
    import compare_models

    documented = compare_models.documented_tag()
    assert compare_models.outputs(documented) == (compare_models.RESULTS, compare_models.PLOT)
    other = study.setting_tag(study.training_settings(study.CPU_EPOCHS + 3, study.CPU_WIDTH, None),
                              evaluation.EVAL_SAMPLES, study.CPU_DRAWS)
    page, plot = compare_models.outputs(other)
    assert other != documented and other in page.name and other in plot.name
    assert page.parent == compare_models.RESULTS.parent and plot.parent == compare_models.PLOT.parent


def test_the_bar_holds_a_gan_against_dcgan_and_a_vae_against_the_best_vae_and_asks_every_class_of_every_seed():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
    import compare_models

    def row(model, dataset, *seeds):  # seeds: (fd, class coverage) per training seed
        per_seed = [{"fd": fd, "class_coverage": coverage} for fd, coverage in seeds]
        return {"model": model, "dataset": dataset, "per_seed": per_seed, "results": per_seed}

    rows = [row("dcgan", "mnist", (50, 1.0), (60, 1.0)), row("wgan", "mnist", (100, 1.0), (110, 1.0)),
            row("began", "mnist", (200, 1.0), (220, 1.0)), row("gan", "mnist", (40, 1.0), (45, 0.9)),
            row("cvae", "mnist", (200, 1.0), (220, 1.0)), row("vae-mlp", "mnist", (600, 1.0), (620, 1.0)),
            row("dcgan", "fashion-mnist", (40, 1.0), (40, 1.0))]
    table = {line.split(" | ")[0][2:]: line.split(" | ")[1:] for line in compare_models.the_bar(rows)[2:]}
    assert table["dcgan"] == ["**yes** (the reference)", "**yes** (the reference) |"]
    assert table["wgan"][0] == "**yes** (1.91x dcgan's FD)" and table["wgan"][1] == "– |"  # 105 / 55
    assert table["began"][0] == "no: 3.82x dcgan's FD"
    assert table["gan"][0] == "no: 1 of 2 seeds miss a class (coverage down to 0.90)"
    assert table["cvae"][0] == "**yes** (the reference)"
    assert table["vae-mlp"][0] == "no: 2.90x cvae's FD"


def test_a_kept_job_is_restored_only_where_it_trained_with_todays_settings(tmp_path, monkeypatch):
    import argparse
    import dataclasses

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
    import compare_models

    from gan_lab import config

    monkeypatch.setattr(compare_models, "KEPT", tmp_path / "kept.json")
    training = study.training_settings(4, 0.5, None)
    args = argparse.Namespace(tag="e4-test", n_eval=1000, sample_seeds=2)
    today, changed = study.Job("dcgan", "mnist", 0), study.Job("dcgan", "fashion-mnist", 0)
    result = {"scores": [{"fd": 50.0}], "train_seconds": 1.0}

    def kept_entry(job, cfg):
        return {**result, "job": job._asdict(), "config": json.loads(config.to_json(cfg, {}))}

    old_default = dataclasses.replace(study.job_config(changed, training), lr=1e-3)
    compare_models.KEPT.write_text(json.dumps({args.tag: {
        today.name: kept_entry(today, study.job_config(today, training)), changed.name: kept_entry(changed, old_default)}}))
    compare_models.restore_kept(tmp_path / "study", training, args)
    assert json.loads((tmp_path / "study" / today.name / study.RESULT_FILE).read_text()) == {**result, "job": today._asdict()}
    assert not (tmp_path / "study" / changed.name).exists()  # trained again by the study


def test_a_run_trained_elsewhere_with_the_jobs_settings_is_adopted_not_trained_again(tmp_path, data_dir):
    """learning_curves.py trains its seed-0 runs in legs (a rising --steps limit); such a run, finished, is
    the study's job trained bit for bit, so the study scores it instead of training it again."""
    job = study.Job("vae-mlp", "mnist", 0)
    donors, short = tmp_path / "curves", tmp_path / "short"
    study.train_job(donors, job, {**TRAINING, "steps": 2}, data_dir)  # two legs, as a learning curve trains
    shutil.copytree(donors / job.name, short / job.name)  # a run stopped after its first leg
    study.train_job(donors, job, {**TRAINING, "steps": 4}, data_dir)
    other = tmp_path / "other"  # finished, but its saved settings name another learning rate
    shutil.copytree(donors / job.name, other / job.name)
    saved = json.loads((other / job.name / "config.json").read_text())
    saved["config"]["lr"] *= 3
    (other / job.name / "config.json").write_text(json.dumps(saved))

    assert study.adopt_run(tmp_path / "s", job, TRAINING, [short, other, tmp_path / "none"]) is None
    assert not (tmp_path / "s" / job.name).exists()
    # A donor being trained now (its run lock held), or trained on while it was copied, is left alone.
    lock = files.RunLock(donors / job.name).acquire()
    assert study.adopt_run(tmp_path / "s", job, TRAINING, [donors]) is None
    lock.release()
    copytree = shutil.copytree

    def copy_then_train_on(source, target, *args, **kwargs):
        copied = copytree(source, target, *args, **kwargs)
        if Path(target).name == job.name:  # the run's directory, not one inside it
            (Path(target) / "checkpoints" / "8").mkdir()  # the donor's next leg saved a checkpoint meanwhile
        return copied

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(study.shutil, "copytree", copy_then_train_on)
        assert study.adopt_run(tmp_path / "s", job, TRAINING, [donors]) is None
    assert list((tmp_path / "s").iterdir()) == []  # no half-adopted copy left behind
    adopted = study.run_job(tmp_path / "s", job, TRAINING, N_EVAL, SAMPLE_SEEDS, data_dir, detail=False,
                            adopt_from=[short, other, donors])
    assert adopted["adopted_from"] == f"curves/{job.name}" and adopted["steps"] == 4
    assert adopted["training_sessions"] == 2  # the donor's legs: not trained a third time
    assert (tmp_path / "s" / job.name / "metrics.jsonl").read_text() == (donors / job.name / "metrics.jsonl").read_text()

    trained = study.run_job(tmp_path / "t", job, TRAINING, N_EVAL, SAMPLE_SEEDS, data_dir, detail=False)
    assert "adopted_from" not in trained
    assert [s["fd"] for s in adopted["scores"]] == [s["fd"] for s in trained["scores"]]  # the same model
    # The cost columns are the study's own timings: the adopted job's legs each compiled anew.
    assert study.trained_here([adopted, trained]) == [trained]
    assert report.cost_cells([adopted]) == "– | –"
    assert report.cost_cells([adopted, trained]) == report.cost_cells([trained])


def test_a_seed_order_must_name_each_seed_once(monkeypatch, capsys):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
    import compare_models

    monkeypatch.setattr(sys, "argv", ["compare_models.py", "--seeds", "3", "--seed-order", "1", "2", "2"])
    with pytest.raises(SystemExit) as stopped:
        compare_models.main()
    assert stopped.value.code == 2
    assert "--seed-order 1 2 2: give each of the seeds 0 to 2 once, e.g. 1 2 0" in capsys.readouterr().err


def test_a_job_trained_with_a_models_former_defaults_is_set_aside_and_trained_again(tmp_path, data_dir, capsys):
    job = study.Job("vae-mlp", "mnist", 0)
    former = study.job_config(job, {**TRAINING, "lr": 3e-3})  # as if the model's default lr had changed since
    runs.train_run(former, out=tmp_path / job.name, data_dir=data_dir, show_progress=False)
    (tmp_path / job.name / study.RESULT_FILE).write_text(json.dumps({"job": job._asdict(), "scores": [{"fd": 1.0}]}))
    study.fix_settings(tmp_path, study.study_settings(TRAINING, N_EVAL, SAMPLE_SEEDS))
    # Not yet set aside (here: another process holds the run), it is still no result of this setting.
    lock = files.RunLock(tmp_path / job.name).acquire()
    assert study.set_aside_stale(tmp_path, [job], TRAINING) == []
    assert study.finished(tmp_path, [job], TRAINING) == {} and study.finished(tmp_path, [job]) != {}
    with pytest.raises(UserError, match="no finished job"):
        report.load_results(tmp_path)
    lock.release()

    results = study.run_study(tmp_path, [job], TRAINING, N_EVAL, SAMPLE_SEEDS, data_dir, show_progress=False)
    assert "vae-mlp-mnist-seed0: trained with other settings than today's (lr)" in capsys.readouterr().out
    assert results[job]["scores"][0]["fd"] != 1.0 and runs.load_trained(tmp_path / job.name).cfg.lr == 1e-3
    set_aside = tmp_path / f"{job.name}.stale-1"  # kept, not deleted
    assert json.loads((set_aside / study.RESULT_FILE).read_text())["scores"] == [{"fd": 1.0}]
    assert report.load_results(tmp_path) == [results[job]]  # and not counted on the results page
