"""gan_lab/report.py: the study's results page from result.json files alone (synthetic results here;
tests/test_study.py makes real ones)."""

import json

import numpy as np
import pytest

from gan_lab import report, study
from gan_lab.errors import UserError
from tests.helpers import call_cli


def fake_result(model, dataset, seed, fds, per_class=None):
    scores = [{"fd": fd} for fd in fds]
    scores[0]["per_class"] = {"fd": per_class or [float(fds[0])] * 10, "coverage": [0.5] * 10}
    scores[0]["memorisation"] = {"memorised_fraction": 0.001, "median_sample_to_train": 7.0, "median_test_to_train": 5.0}
    return {"job": {"model": model, "dataset": dataset, "seed": seed}, "scores": scores, "train_seconds": 60.0,
            "steps_per_sec": 10.0}


def write_study(path, results):
    path.mkdir()
    (path / study.STUDY_FILE).write_text(json.dumps({"training": {"epochs": 1}}))
    for r in results:
        job = study.Job(**r["job"])
        (path / job.name).mkdir()
        (path / job.name / study.RESULT_FILE).write_text(json.dumps(r))


def test_models_within_their_training_seed_spread_share_a_rank():
    summaries = {"a": {"mean": 100.0, "training_std": 10.0}, "b": {"mean": 115.0, "training_std": 10.0},
                 "c": {"mean": 200.0, "training_std": 5.0}, "d": {"mean": 90.0, "training_std": None}}
    assert report.ranking(summaries) == [("d", 1), ("a", 1), ("b", 1), ("c", 4)]
    assert not report.tied({"mean": 1.0, "training_std": None}, {"mean": 1.5, "training_std": None})


def test_fd_summary_splits_training_seed_and_sample_draw_spread():
    jobs = [fake_result("m", "mnist", 0, [100.0, 102.0]), fake_result("m", "mnist", 1, [120.0, 118.0])]
    summary = report.fd_summary(jobs)
    assert summary["mean"] == 110.0 and summary["seeds"] == 2
    assert summary["training_std"] == pytest.approx(np.std([101.0, 119.0], ddof=1))
    assert summary["sampling_std"] == pytest.approx(np.std([100.0, 102.0], ddof=1))


def test_report_ranks_transfer_and_draws_figures(tmp_path):
    models = ["a", "b", "c", "d"]
    results = []
    for seed in range(2):
        for i, model in enumerate(models):
            results.append(fake_result(model, "mnist", seed, [10.0 * (i + 1) + seed, 10.0 * (i + 1) + seed + 0.5]))
            # Fashion-MNIST reverses the order of c and d, keeps a and b.
            results.append(fake_result(model, "fashion-mnist", seed, [[5.0, 6.0, 40.0, 20.0][i] + seed] * 2))
    write_study(tmp_path / "s", results)
    page = report.write(tmp_path / "s", tmp_path / "out")
    text = page.read_text()
    transfer = json.loads((tmp_path / "out" / "summary.json").read_text())["transfer"]
    assert transfer["rho"] == pytest.approx(0.8)  # ranks 1 2 3 4 vs 1 2 4 3
    assert transfer["per_seed"] == {"0": pytest.approx(0.8), "1": pytest.approx(0.8)}
    assert "**0.80**" in text and "| 1 | a | 2 |" in text
    for name in ("ranking-transfer.png", "per-class-fd-mnist.png", "per-class-fd-fashion-mnist.png"):
        assert (tmp_path / "out" / name).stat().st_size > 10_000


def test_report_of_a_directory_without_a_study_is_one_line(tmp_path):
    with pytest.raises(UserError, match="not a study directory"):
        report.load_results(tmp_path)
    result = call_cli("report", str(tmp_path))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
