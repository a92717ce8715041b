"""gan_lab/sweep.py and `gan_lab sweep`: a search space derived from the declared settings, stable
seeded draws, each setting trained on both datasets (paired), sharded, never trained twice."""

import json

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
    assert sweep_report.wilson(0, 10)[0] == 0.0 and sweep_report.wilson(10, 10)[1] == 1.0
