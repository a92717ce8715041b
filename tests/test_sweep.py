"""gan_lab/sweep.py and `gan_lab sweep`: a search space derived from the declared settings, stable
seeded draws, each setting trained on both datasets (paired), sharded, never trained twice."""

import json

import pytest

from gan_lab import study


def test_a_sweeps_search_space_comes_from_the_declared_settings_and_its_draws_are_stable():
    from gan_lab import config, registry, sweep

    assert set(sweep.search_space("dcgan")) == {"lr", "b1", "b2", "batch_size", "width", "loss"}
    assert set(sweep.search_space("vae-mlp")) == {"lr", "b1", "b2", "batch_size", "hidden"}  # no width to search
    assert {"n_critic", "clip", "optimizer", "g_lr_scale"} <= set(sweep.search_space("wgan"))
    trials = sweep.draw_trials("wgan", 40, seed=1)
    assert trials[:5] == sweep.draw_trials("wgan", 5, seed=1)  # more trials keep the first ones
    assert trials != sweep.draw_trials("wgan", 40, seed=2)
    default_lr = config.make_config("wgan", {}).lr
    lrs = [t.settings["lr"] for t in trials]
    assert all(default_lr / 10 <= lr <= default_lr * 10 for lr in lrs) and min(lrs) < default_lr < max(lrs)
    assert {t.settings["optimizer"] for t in trials} == {"rmsprop", "adam"}
    assert {t.settings["n_critic"] for t in trials} <= set(registry.get("wgan").settings["n_critic"].search.values)
    fixed = sweep.draw_trials("wgan", 5, seed=1, fixed={"width": 0.5})
    assert all(t.settings["width"] == 0.5 for t in fixed)
    assert [{**t.settings, "width": 0} for t in fixed] == [{**t.settings, "width": 0} for t in trials[:5]]


def test_a_sweep_trains_each_setting_on_both_datasets_in_shards_and_never_twice(tmp_path, data_dir, capsys):
    """Paired, sharded, resumable, through the command: one setting x 2 datasets on 128 images, one
    dataset per shard."""
    from gan_lab import cli, config, sweep

    argv = ["sweep", "vae-mlp", "--trials", "1", "--subset", "128", "--n-eval", "200", "--dir", str(tmp_path),
            "--data-dir", str(data_dir), "--no-progress", "--fix", "batch_size=32"]
    assert cli.main([*argv, "--shard", "0/2"]) == 0 and cli.main([*argv, "--shard", "1/2"]) == 0
    trials = sweep.draw_trials("vae-mlp", 1, fixed={"batch_size": 32})
    stamps = {}
    for trial in trials:
        for dataset in ("mnist", "fashion-mnist"):
            run_dir = tmp_path / trial.name / f"vae-mlp-{dataset}-seed0"
            cfg = config.load(run_dir / "config.json")
            assert {k: getattr(cfg, k) for k in trial.settings} == trial.settings  # the same setting on both
            assert cfg.seed == 0 and cfg.subset == 128
            stamps[run_dir] = (run_dir / study.RESULT_FILE).stat().st_mtime_ns
    assert json.loads((tmp_path / sweep.SWEEP_FILE).read_text())["trials"] == [t.settings for t in trials]
    capsys.readouterr()
    assert cli.main(argv) == 0  # the whole sweep again: every job has its result
    assert "2 jobs done" in capsys.readouterr().out
    assert stamps == {run_dir: (run_dir / study.RESULT_FILE).stat().st_mtime_ns for run_dir in stamps}
    # Other settings in the same directory would mix two sweeps: refused, with what differs.
    assert cli.main([*argv[:-1], "batch_size=64"]) == 2 and "other settings" in capsys.readouterr().err

    # Its answers and pictures, as a study's: `gan_lab report SWEEP_DIR`.
    assert cli.main(["report", str(tmp_path), "--data-dir", str(data_dir)]) == 0
    page = (tmp_path / "report" / "report.md").read_text()
    assert "Sweep of vae-mlp" in page and "trial000" in page and "McNemar" in page
    answers = json.loads((tmp_path / "report" / "answers.json").read_text())
    assert answers["paired"]["pairs"] == 1 and all(d["settings"] == 1 for d in answers["per_dataset"].values())
    for figure in ("sweep_vae-mlp-quality.png", "sweep_vae-mlp-samples.png"):
        assert (tmp_path / "report" / figure).read_bytes().startswith(b"\x89PNG")


def test_a_sweeps_answers_count_pairs_and_intervals_as_defined():
    from gan_lab import sweep_report

    def row(k, mnist_sigma, fashion_sigma, coverage=1.0):
        return {"trial": f"trial{k:03d}", "settings": {}, **{
            d: {"fd": 1.0, "class_coverage": coverage, "precision": 1, "recall": 1, "sigma": s,
                "works": s <= 0.3 and coverage >= 1} for d, s in (("mnist", mnist_sigma), ("fashion-mnist", fashion_sigma))}}

    # 10 settings: 8 work on MNIST, 3 on Fashion-MNIST; 5 work on MNIST only, none on Fashion-MNIST only.
    sigmas = [(0.05, 0.1), (0.1, 0.2), (0.15, 0.25), (0.2, 0.5), (0.22, 0.6), (0.25, 0.7), (0.28, 0.8),
              (0.29, 0.9), (0.5, 1.0), (0.6, 1.1)]
    found = sweep_report.analyse([row(k, m, f) for k, (m, f) in enumerate(sigmas)])
    assert found["per_dataset"]["mnist"]["works"] == 8 and found["per_dataset"]["fashion-mnist"]["works"] == 3
    low, high = found["per_dataset"]["mnist"]["interval"]
    assert low < 0.8 < high and 0.44 < low < 0.5 and 0.94 < high < 0.97  # Wilson's for 8 of 10
    assert found["paired"] == {"pairs": 10, "both": 3, "mnist_only": 5, "fashion_only": 0, "neither": 2,
                               "p_value": found["paired"]["p_value"]}
    assert abs(found["paired"]["p_value"] - 2 * 0.5 ** 5) < 1e-12  # exact two-sided binomial, 5 of 5 discordant
    assert abs(found["transfer"]["rho"] - 1.0) < 1e-12 and found["transfer"]["its_rank_on_fashion"] == 1
    # The pooled table's cells: the best MNIST setting (trial000, sigma 0.05) is best on Fashion-MNIST too.
    assert sweep_report.transfer_cells(found["transfer"]) == "1.00 (1.00, 1.00) | 1 of 10 (trial000)"
    assert sweep_report.transfer_cells(None) == "– | –"
    # The best MNIST setting (trial002, 0.1) worst on Fashion-MNIST, tied with trial004: its rank is the
    # ties' lowest, 4 of 5 (method "min"), counted among the Fashion-MNIST sigmas, not the MNIST ones.
    crossed = sweep_report.analyse([row(k, m, f) for k, (m, f) in
                                    enumerate([(0.3, 0.2), (0.4, 0.3), (0.1, 0.9), (0.5, 0.1), (0.6, 0.9)])])
    assert sweep_report.transfer_cells(crossed["transfer"]).endswith("| 4 of 5 (trial002)")
    assert sweep_report.wilson(0, 10)[0] == 0.0 and sweep_report.wilson(10, 10)[1] == 1.0

    # Judged again at other thresholds: at 0.5 nine MNIST settings work (not 0.6, nor the one missing a
    # class, which fails at any threshold) and four Fashion-MNIST ones (up to 0.5 itself).
    rows = [row(k, m, f) for k, (m, f) in enumerate(sigmas)] + [row(10, 0.01, 0.01, coverage=0.9)]
    by_threshold = {at["threshold"]: at for at in sweep_report.sensitivity({"m": rows}, (0.3, 0.5))}
    assert by_threshold[0.3]["paired"] == {**found["paired"], "pairs": 11, "neither": 3}
    assert by_threshold[0.5]["per_dataset"]["mnist"]["works"] == 9
    assert by_threshold[0.5]["per_dataset"]["fashion-mnist"]["works"] == 4
    assert (by_threshold[0.5]["paired"]["mnist_only"], by_threshold[0.5]["paired"]["fashion_only"]) == (5, 0)
    assert rows[0]["mnist"]["works"] and not sweep_report.at_threshold(rows, 0.01)[0]["mnist"]["works"]  # a copy
    # Threshold-free: 10 of the 11 settings score lower (better) on MNIST, the last the same: p exact.
    difference = sweep_report.paired_difference({"m": rows})
    assert (difference["pairs"], difference["higher_on_mnist"], difference["higher_on_fashion"]) == (11, 0, 10)
    assert difference["median"] < 0 and abs(difference["p_value"] - 2 * 0.5 ** 10) < 1e-9
    # Below 2 differing pairs there is no test, and no median without pairs: None (JSON null), not NaN.
    one = sweep_report.paired_difference({"m": rows[:1]})
    assert one["pairs"] == 1 and one["p_value"] is None
    assert one["median"] == rows[0]["mnist"]["sigma"] - rows[0]["fashion-mnist"]["sigma"]
    assert sweep_report.paired_difference({"m": []})["median"] is None


def test_mcnemar_power_is_the_simulated_rejection_rate_and_keeps_its_level():
    import numpy as np
    import scipy.stats

    from gan_lab import sweep_report

    rng = np.random.default_rng(0)
    rejects_at = {}

    def rejects(b, d):
        if (b, d) not in rejects_at:
            rejects_at[b, d] = d > 0 and scipy.stats.binomtest(b, d).pvalue < 0.05
        return rejects_at[b, d]

    # 40 settings, 30% working on MNIST only, 5% on Fashion-MNIST only: each draw is the four verdicts' counts.
    draws = rng.multinomial(40, [0.30, 0.05, 0.65], size=4000)
    simulated = np.mean([rejects(b, b + c) for b, c, _ in draws])
    exact = sweep_report.mcnemar_power(40, 0.30, 0.05)
    assert abs(exact - simulated) < 0.021, (exact, simulated)  # 3 standard errors at 4,000 draws (power 0.74)
    # No difference between the datasets: the exact test rejects at most 5% of the time, at any size.
    assert all(sweep_report.mcnemar_power(n, 0.1, 0.1) <= 0.05 for n in (10, 20, 80))
    assert sweep_report.mcnemar_power(20, 0.3, 0.05) < sweep_report.mcnemar_power(80, 0.3, 0.05)


def test_several_models_sweeps_pool_into_one_page(tmp_path, data_dir, capsys):
    """`gan_lab report SWEEP SWEEP ...`: each sweep's page, and one pooling them, from hand-made results
    (the scoring of real runs is test_a_sweep_trains_each_setting_on_both_datasets_in_shards_and_never_twice's)."""
    import scipy.stats

    from gan_lab import cli, quality, sweep

    # FDs placed by the real noise ladders of 200 samples, whose rungs are known here.
    ladders = {d: quality.noise_ladder(d, 200, data_dir) for d in ("mnist", "fashion-mnist")}
    good = {d: ladders[d][1][1] for d in ladders}  # the ladder's second rung: sigma well under the threshold
    bad = {d: ladders[d][-1][1] for d in ladders}  # its noisiest rung: fails
    verdicts = {"dcgan": [("good", "bad"), ("good", "bad"), ("good", "good")],
                "cgan": [("good", "bad"), ("bad", "good"), ("bad", "bad")]}
    for seed, (model, trials) in enumerate(verdicts.items()):  # each sweep its own seed: independent draws
        sweep_dir = tmp_path / model
        sweep_dir.mkdir()
        (sweep_dir / sweep.SWEEP_FILE).write_text(json.dumps({"model": model, "budget": {"epochs": 1}, "seed": seed,
                                                              "trials": [{"lr": 1e-4 * (k + 1)} for k in range(3)]}))
        for k, pair in enumerate(trials):
            for dataset, verdict in zip(("mnist", "fashion-mnist"), pair):
                run_dir = sweep_dir / sweep.Trial(k, {}).name / study.Job(model, dataset, seed).name
                run_dir.mkdir(parents=True)
                fd = (good if verdict == "good" else bad)[dataset]
                (run_dir / study.RESULT_FILE).write_text(json.dumps({"scores": [
                    {"fd": fd, "class_coverage": 1.0, "precision": 0.5, "recall": 0.5, "n_generated": 200}]}))
    out = tmp_path / "pooled"
    assert cli.main(["report", str(tmp_path / "dcgan"), str(tmp_path / "cgan"), "--out", str(out),
                     "--data-dir", str(data_dir)]) == 0, capsys.readouterr().err
    answers = json.loads((out / "answers.json").read_text())
    assert answers["models"]["dcgan"]["paired"]["mnist_only"] == 2 and answers["models"]["cgan"]["paired"]["fashion_only"] == 1
    pooled = answers["pooled"]["paired"]
    assert (pooled["pairs"], pooled["both"], pooled["mnist_only"], pooled["fashion_only"], pooled["neither"]) == (6, 1, 3, 1, 1)
    assert abs(pooled["p_value"] - scipy.stats.binomtest(3, 4).pvalue) < 1e-12
    assert answers["pooled"]["per_dataset"]["mnist"]["works"] == 4 and answers["pooled"]["per_dataset"]["fashion-mnist"]["works"] == 2
    # 6 pairs: only 6 of 6 discordant, all one way, reach p < 0.05 (p = 2 / 2^6); with 30% and 5% of the
    # settings working on one dataset only, that is 0.35^6 ((6/7)^6 + (1/7)^6).
    assert abs(answers["power"][0]["power"] - 0.35 ** 6 * ((6 / 7) ** 6 + (1 / 7) ** 6)) < 1e-12
    page = (out / "report.md").read_text()
    assert "| **all** | 6 |" in page and "| dcgan | 3 |" in page and "power" in page
    # Too few pairs (3) for a rank correlation: both transfer cells say so, and every row has the header's columns.
    table = [line for line in page.splitlines() if line.startswith("| dcgan |") or line.startswith("| model |")]
    assert "| – | – | [dcgan](" in table[1] and len({line.count("|") for line in table}) == 1  # then its page
    assert (out / "sweeps-quadrant.png").read_bytes().startswith(b"\x89PNG")
    assert all((tmp_path / model / "report" / "report.md").exists() for model in verdicts)  # each sweep's own page
    # A sweep still running, with one setting trained on MNIST only so far, is listed as such, not as "nan".
    started = tmp_path / "vae"
    (started / sweep.Trial(0, {}).name / study.Job("vae", "mnist", 2).name).mkdir(parents=True)
    (started / sweep.SWEEP_FILE).write_text(json.dumps({"model": "vae", "budget": {"epochs": 1}, "seed": 2,
                                                        "trials": [{"lr": 1e-3}]}))
    (started / sweep.Trial(0, {}).name / study.Job("vae", "mnist", 2).name / study.RESULT_FILE).write_text(json.dumps(
        {"scores": [{"fd": good["mnist"], "class_coverage": 1.0, "precision": 0.5, "recall": 0.5, "n_generated": 200}]}))
    assert cli.main(["report", str(tmp_path / "dcgan"), str(tmp_path / "cgan"), str(started), "--out",
                     str(tmp_path / "with-vae"), "--data-dir", str(data_dir)]) == 0, capsys.readouterr().err
    page = (tmp_path / "with-vae" / "report.md").read_text()
    assert "| vae | 0 | 1/1 = 1.00 (0.21, 1.00) | 0/0 |" in page and "nan" not in page
    own_page = (started / "report" / "report.md").read_text()  # the sweep's own page, written beside it
    assert "| fashion-mnist | 0 | 0 | – | – |" in own_page and "nan" not in own_page.lower()
    for answers in (tmp_path / "with-vae" / "answers.json", started / "report" / "answers.json"):
        json.loads(answers.read_text(), parse_constant=lambda name: pytest.fail(f"{answers} holds {name}"))
    # A study among them, or one model twice, is refused in one line.
    assert cli.main(["report", str(tmp_path / "dcgan"), str(tmp_path), "--out", str(out)]) == 2
    assert "not a sweep directory" in capsys.readouterr().err
    assert cli.main(["report", str(tmp_path / "dcgan"), str(tmp_path / "dcgan"), "--out", str(out),
                     "--data-dir", str(data_dir)]) == 2
    assert "two sweeps of dcgan" in capsys.readouterr().err
    # Two sweeps drawn with one seed share their settings: their pairs are not independent, so not pooled.
    same_seed = json.loads((tmp_path / "cgan" / sweep.SWEEP_FILE).read_text())
    (tmp_path / "cgan" / sweep.SWEEP_FILE).write_text(json.dumps({**same_seed, "seed": 0}))
    for run_dir in (tmp_path / "cgan").glob("trial*/cgan-*-seed1"):
        run_dir.rename(run_dir.with_name(run_dir.name.replace("seed1", "seed0")))
    assert cli.main(["report", str(tmp_path / "dcgan"), str(tmp_path / "cgan"), "--out", str(out),
                     "--data-dir", str(data_dir)]) == 2
    assert "both drawn with seed 0" in capsys.readouterr().err
