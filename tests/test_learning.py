"""The learning check (issue 26): every registered model, at its defaults, must still learn the data in
a short run. A change that stops a model learning (a sign flipped in a loss, a learning rate mistyped,
a layer left out) fails here, where the shape tests and the bit-for-bit tests pass.

The steps and FD threshold of each model come from experiments/learning_check.py, which measured three
seeds and a control trained on shapeless images at this budget (experiments/results/learning_check.md):
the threshold is halfway between the worst seed's FD and the bar (the lower of the untrained model's
FD and the control's), so a run that gets only half as far as the slowest seed still passes.
Parametrized over the registry: a new model fails here until its check is measured, and a model whose
defaults change fails until it is measured again. A model that does not learn at the suite's shape is
checked at half width for up to four epochs (experiments/results/learning_check-wide.md; the 7 such models
settle within one and a half), one to four minutes a model, only where GAN_LAB_LEARNING_CHECK=wide;
elsewhere it is skipped, naming why."""

import json
import sys
from pathlib import Path

import pytest
from tests.helpers import TINY, TINY_SUBSET

from gan_lab import registry

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
import learning_check  # noqa: E402  (the measurement the thresholds come from, and the rule that reads them)


def test_the_check_trains_at_the_suites_own_shape():
    # The suite compiles every model's step at TINY's shape once; a check at another shape would pay
    # those compilations again.
    budget = learning_check.BUDGET
    assert (budget["width"], budget["batch_size"], budget["images"]) == (TINY["width"], TINY["batch_size"], TINY_SUBSET)


def measured_check(name: str) -> dict:
    try:
        return learning_check.the_check(name)
    except LookupError as missing:
        pytest.fail(str(missing), pytrace=False)


def check_learns(name: str, check: dict, data_dir) -> None:
    steps, budget = check["steps"], learning_check.BUDGETS[check["budget"]][0]
    fd, _ = learning_check.measure(name, [steps], seed=0, data_dir=data_dir, initial=False, budget=budget)[steps]
    page = learning_check.results_paths(budget["dataset"], check["budget"])[1].relative_to(learning_check.ROOT)
    assert fd <= check["fd_threshold"], (
        f"{name} no longer learns at its defaults: FD {fd:.0f} after {steps} steps at width {budget['width']}, "
        f"threshold {check['fd_threshold']} ({page})")


@pytest.mark.parametrize("name", registry.names())
def test_a_short_run_at_the_defaults_learns_the_data(name, data_dir):
    """At the suite's tiny shape, the models that learn there."""
    check = measured_check(name)
    if check["steps"] is None:
        # Measured, and unable to tell a working model from a broken one at this budget: its learning
        # curve at width 0.5 (experiments/results/learning_curves.md) is the evidence that it learns.
        pytest.skip(check["why"])
    if check["budget"] != "tiny":
        pytest.skip(f"{name} is checked at half width: test_a_half_width_run_at_the_defaults_learns_the_data")
    check_learns(name, check, data_dir)


@pytest.mark.parametrize("name", registry.names())
def test_a_half_width_run_at_the_defaults_learns_the_data(name, data_dir):
    """At half width, the models that do not learn at the suite's shape: CI's second test command
    (`GAN_LAB_LEARNING_CHECK=wide ... -k half_width`), one to four minutes a model."""
    if not learning_check.wide_checks_requested():
        pytest.skip(f"runs where {learning_check.WIDE_ENV}=wide (CI's second test command)")
    check = measured_check(name)
    if check["budget"] != "wide":
        pytest.skip(f"{name} is checked at the suite's shape: test_a_short_run_at_the_defaults_learns_the_data")
    if check["steps"] is None:
        pytest.skip(check["why"])
    check_learns(name, check, data_dir)


def test_an_unmeasured_model_or_one_whose_defaults_changed_is_told_what_to_run():
    kept = json.loads(learning_check.results_paths("mnist")[0].read_text())
    measured = kept["models"]["cgan"]
    changed = {**measured, "defaults": {**measured["defaults"], "lr": measured["defaults"]["lr"] * 2}}
    with pytest.raises(LookupError, match=r"cgan's settings changed .* `python experiments/learning_check.py --models cgan --again`"):
        learning_check.the_check("cgan", {"models": {"cgan": changed}})
    with pytest.raises(LookupError, match=r"cgan has no measured learning check: run `python experiments/learning_check.py --models cgan`"):
        learning_check.the_check("cgan", {"models": {}})
    assert learning_check.the_check("cgan", kept)["fd_threshold"] > 0


def test_a_wide_measurement_trains_every_seed_side_by_side_only_until_its_check_is_settled(monkeypatch):
    fd = {0: 1600.0, 469: 1500.0, 703: 1000.0, 937: 400.0, 1406: 300.0}  # 0.7x the bar at 703, 0.5x at 937
    asked = []

    def fake_legs(name, steps, seed=0, data_dir=None, control=False, initial=True, budget=None):
        for step in [0, *steps]:
            asked.append((seed, control, step))
            yield step, ((1600.0 if control else fd[step]), 1.0)

    monkeypatch.setattr(learning_check, "legs", fake_legs)
    entry = learning_check.measure_until_settled("dcgan", list(fd)[1:], "wide")
    assert list(entry["measured"]) == list(entry["control"]) == ["0", "469", "703", "937"]
    assert max(step for _, _, step in asked) == 937  # 1406 never trained
    assert learning_check.choose(learning_check.as_steps(entry["measured"]), learning_check.as_steps(entry["control"]),
                                 "wide") == {"steps": 937, "fd_threshold": 1000.0}


def test_a_setting_declared_after_a_measurement_counts_as_the_value_it_was_measured_with():
    kept = json.loads(learning_check.results_paths("mnist")[0].read_text())
    budget = kept["budget"]
    for model, name in (("ebgan", "d_norm"), ("began", "reconstruction")):
        setting = registry.get(model).settings[name]
        entry = json.loads(json.dumps(kept["models"][model]))
        entry["defaults"]["settings"].pop(name, None)  # as measured before the model declared it
        today = learning_check.defaults_of(model, budget["dataset"], budget)["settings"][name]
        assert model not in learning_check.stale_models(kept)  # measured with today's defaults, so only `name` can differ
        assert learning_check.measured_with_todays_defaults(model, entry, budget["dataset"], budget) == (setting.absent == today)


def test_a_model_that_cannot_learn_at_the_suites_shape_is_checked_at_half_width_where_asked(monkeypatch):
    monkeypatch.delenv(learning_check.WIDE_ENV, raising=False)  # as in the suite (CI's second command sets it)
    tiny = json.loads(learning_check.results_paths("mnist")[0].read_text())
    assert learning_check.the_check("dcgan", tiny)["steps"] is None  # measured: it does not learn at the tiny shape
    assert "GAN_LAB_LEARNING_CHECK=wide" in learning_check.the_check("dcgan", tiny)["why"]
    defaults = learning_check.defaults_of("dcgan", budget=learning_check.WIDE_BUDGET)
    assert defaults["settings"]["width"] == 0.5 and defaults["batch_size"] == 64
    seeds = {"0": [[1600.0, 0.1]] * 3, "469": [[1500.0, 0.2]] * 3, "703": [[600.0, 1.0], [700.0, 1.0], [650.0, 0.9]],
             "937": [[300.0, 1.0]] * 3}
    control = {"0": [1600.0, 0.1], "469": [1550.0, 0.1], "703": [1500.0, 0.1], "937": [1450.0, 0.1]}
    wide = {"budget": learning_check.WIDE_BUDGET,
            "models": {"dcgan": {"measured": seeds, "control": control, "defaults": defaults}}}
    # The first point where every seed is at half the bar (the lower of 1600 and the control's) or below, having
    # been at 0.7x it at the point before: 703 steps is at half the bar (1500 / 2), but 469 was not at 0.7x.
    assert learning_check.the_check("dcgan", tiny, wide) == {"steps": 937, "fd_threshold": 875.0, "budget": "wide"}
    monkeypatch.setenv(learning_check.WIDE_ENV, "wide")
    with pytest.raises(LookupError, match=r"dcgan has no measured learning check at the wide budget: run "
                                          r"`python experiments/learning_check.py --models dcgan --budget wide`"):
        learning_check.the_check("dcgan", tiny, {"models": {}})


def test_a_grown_ladder_measures_only_the_unsettled_models_points_and_only_from_the_same_runs(monkeypatch):
    assert learning_check.is_prefix([469, 703, 937], learning_check.WIDE_LADDER)
    assert not learning_check.is_prefix([469, 937], learning_check.WIDE_LADDER)
    ladder = (469, 703, 937, 1406)
    fd = {0: 1600.0, 469: 1500.0, 703: 1300.0, 937: 900.0, 1406: 500.0}  # every seed alike, the control stays at 1600
    trained = []

    def fake_measure(name, steps, seed=0, data_dir=None, control=False, initial=True, budget=None):
        trained.append((name, tuple(steps), seed, control, initial))
        return {step: ((1600.0 if control else fd[step]), 1.0) for step in steps}

    monkeypatch.setattr(learning_check, "measure", fake_measure)
    def measured_to_937():  # an entry measured on the ladder before it grew
        return {"measured": {str(step): [[fd[step], 1.0]] * 3 for step in (0,) + ladder[:-1]},
                "control": {str(step): [1600.0, 1.0] for step in (0,) + ladder[:-1]}, "seconds": 1.0, "control_seconds": 1.0}

    unsettled = measured_to_937()
    learning_check.extend_ladder("ebgan", unsettled, ladder, "wide", None, learning_check.WIDE_BUDGET)
    # Each seed and the control trained again to the new point, scored on the way at the last kept one.
    assert trained == [("ebgan", (937, 1406), seed, False, False) for seed in (0, 1, 2)] + [("ebgan", (937, 1406), 0, True, False)]
    assert learning_check.choose(learning_check.as_steps(unsettled["measured"]),
                                 learning_check.as_steps(unsettled["control"]), "wide")["steps"] == 1406
    trained.clear()
    settled = measured_to_937()
    settled["measured"].update({"703": [[1000.0, 1.0]] * 3, "937": [[400.0, 1.0]] * 3})  # 0.7x the bar, then 0.5x
    learning_check.extend_ladder("dcgan", settled, ladder, "wide", None, learning_check.WIDE_BUDGET)
    assert trained == [] and "1406" not in settled["measured"]  # settled at 937: a later point cannot change it
    measured_elsewhere = measured_to_937()
    fd[937] = 950.0  # a rerun that does not reproduce the kept point: not one run, so refused
    with pytest.raises(SystemExit, match=r"ebgan, seed 0: .* --models ebgan --again"):
        learning_check.extend_ladder("ebgan", measured_elsewhere, ladder, "wide", None, learning_check.WIDE_BUDGET)


def test_a_finished_learning_curve_is_kept_in_the_repository_and_restored_unless_its_defaults_changed(tmp_path, monkeypatch):
    import learning_curves

    from gan_lab import config, study

    monkeypatch.setattr(learning_curves, "KEPT", tmp_path / "kept.json")
    curves_dir, epochs = tmp_path / "w0.5-ev5000", 2
    training = study.training_settings(epochs, 0.5, None)
    job = study.Job("vae-mlp", "fashion-mnist", 0)
    run_dir = curves_dir / job.name
    run_dir.mkdir(parents=True)
    config.save(study.job_config(job, training), run_dir / "config.json", {})  # as the curve's run saved it
    points = [{"epochs": e, "fd": 100.0 / e, "class_coverage": 1.0} for e in learning_curves.epoch_fractions(epochs)]
    learning_curves.keep_curve(curves_dir, job, points, training, epochs)
    # The same curve started again on a machine that lacked it: its first points do not replace it.
    learning_curves.keep_curve(curves_dir, job, points[:2], training, epochs)

    fresh = tmp_path / "new-machine" / curves_dir.name  # the same setting, nothing trained there
    learning_curves.restore_kept(fresh, training, epochs)
    assert learning_curves.read_curves(fresh) == {("vae-mlp", "fashion-mnist"): points}
    assert not learning_curves.stale_fields(fresh, job, {**training, "epochs": epochs})

    # A default changed since (here: the learning rate the run trained with differs from today's):
    # not restored, so the command draws the curve again.
    kept = json.loads(learning_curves.KEPT.read_text())
    kept[learning_curves.kept_key(curves_dir, epochs)][job.name]["config"]["config"]["lr"] *= 2
    learning_curves.KEPT.write_text(json.dumps(kept))
    other = tmp_path / "another-machine" / curves_dir.name
    learning_curves.restore_kept(other, training, epochs)
    assert learning_curves.read_curves(other) == {} and not other.exists()
    # Curves of another length are another setting: not restored for this one.
    learning_curves.restore_kept(tmp_path / "third-machine" / curves_dir.name, training, epochs + 1)
    assert not (tmp_path / "third-machine").exists()
