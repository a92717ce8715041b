"""Every flag is checked where it is parsed: one table of bad command lines, each driven through the
CLI's main() and answered with exit code 2 and one line on stderr that names the flag and the fix.
In-process (cli.main never exits the process), so the whole table takes seconds."""

import dataclasses
import json

import pytest

from gan_lab import cli, config, registry

# A run directory for the resume rows: only its config.json is read before they fail.
SAVED = config.make_config("dcgan", {"dataset": "mnist", "subset": 256, "batch_size": 32, "epochs": 2})

BAD_COMMAND_LINES = [
    # train: values
    (["train", "dcgan", "--lr", "nan"], ["--lr must be a positive finite number", "nan"]),
    (["train", "dcgan", "--lr", "inf"], ["--lr must be a positive finite number", "inf"]),
    (["train", "dcgan", "--lr", "0"], ["--lr must be a positive finite number"]),
    (["train", "dcgan", "--width", "-0.5"], ["--width must be a positive finite number"]),
    (["train", "dcgan", "--width", "inf"], ["--width must be a positive finite number"]),
    (["train", "dcgan", "--subset", "70000"], ["--subset 70000 is larger than the fashion-mnist training set (60000"]),
    (["train", "dcgan", "--subset", "0"], ["--subset must be at least 1"]),
    (["train", "dcgan", "--epochs", "1", "--steps", "5000"],
     ["--steps 5000 is beyond --epochs 1 (937 steps", "whichever comes first", "raise --epochs to at least 6"]),
    (["train", "dcgan", "--epochs", "2", "--eval-every", "3"], ["--eval-every 3 is beyond --epochs 2"]),
    (["train", "dcgan", "--checkpoint-every", "0"], ["--checkpoint-every must be at least 1"]),
    (["train", "dcgan", "--log-every", "0"], ["--log-every must be at least 1"]),
    (["train", "dcgan", "--devices", "0"], ["--devices must be at least 1"]),
    (["train", "dcgan", "--batch-size", "64", "--devices", "3"], ["does not split evenly over --devices 3"]),
    (["train", "dcgan", "--batch-size", "100000"], ["--batch-size 100000 is larger than the dataset (60000"]),
    (["train", "dcgan", "--steps", "many"], ["--steps", "a number of steps, or none"]),
    (["train", "dcgan", "--steps", "none"], ["--steps none clears a resumed run's step limit"]),
    # train: presets
    (["train", "dcgan", "--preset", "paper"], ["dcgan has no preset 'paper'", "it has none"]),
    (["train", "dragan", "--preset", "fast"], ["dragan has no preset 'fast'", "its presets: paper"]),
    # train: flags the chosen model does not read
    (["train", "vae", "--loss", "hinge"], ["--loss does not apply to vae"]),
    (["train", "vae-mlp", "--loss", "bce"], ["--loss does not apply to vae-mlp"]),
    (["train", "vae-mlp", "--width", "0.5"], ["--width does not apply to vae-mlp"]),
    # train --resume
    (["train", "--resume", "{run}", "--tensorboard"], ["--tensorboard is chosen when a run starts"]),
    (["train", "--resume", "{run}", "--lr", "0.1"], ["cannot resume", "lr=0.1", "start a new run"]),
    (["train", "--resume", "{run}", "--out", "elsewhere"], ["--out and --resume exclude each other"]),
    (["train", "--resume", "{run}", "--epochs", "1", "--steps", "20"], ["--steps 20 is beyond --epochs 1"]),
    # sample: flags the chosen output ignores, and bad values
    (["sample", "{run}", "--labels", ""], ["--labels names no class"]),
    (["sample", "{run}", "--labels", ",,"], ["--labels names no class"]),
    (["sample", "{run}", "--labels", "a,b"], ["--labels takes class numbers"]),
    (["sample", "{run}", "--gif", "--labels", "0,1"], ["--labels does not apply to --gif"]),
    (["sample", "{run}", "--gif", "--seed", "3"], ["--seed does not apply to --gif"]),
    (["sample", "{run}", "--sheet", "interpolate", "--labels", "1"], ["--labels does not apply to --sheet interpolate"]),
    (["sample", "{run}", "--gif", "--sheet", "wardrobe"], ["choose one output: --gif or --sheet wardrobe"]),
    (["sample", "{run}", "--n", "10", "--sheet", "interpolate"], ["choose one output: --n or --sheet interpolate"]),
    (["sample", "{run}", "--n", "0"], ["--n must be at least 1"]),
    # eval
    (["eval", "{run}", "--n", "3"], ["--n must be at least 4", "3 nearest neighbours"]),
    # a run directory that does not exist
    (["sample", "{run}-missing"], ["no run directory {run}-missing: give the directory `gan_lab train` printed"]),
    (["sample", "{run}-missing", "--gif"], ["no run directory {run}-missing"]),
    (["eval", "{run}-missing"], ["no run directory {run}-missing: give the directory `gan_lab train` printed"]),
    (["train", "--resume", "{run}-missing"], ["no run directory {run}-missing"]),
    # names
    (["train", "gan9"], ["unknown model 'gan9'", "dcgan"]),
    (["compare", "dcgan", "--datasets", "cifar"], ["unknown dataset 'cifar'"]),
    # study and report
    (["study", "--models", "dcgan", "gan9"], ["unknown model 'gan9'", "dcgan"]),
    (["study", "--datasets", "cifar"], ["unknown dataset 'cifar'", "fashion-mnist"]),
    (["study", "--seeds", "0"], ["--seeds must be at least 1"]),
    (["study", "--sample-draws", "0"], ["--sample-draws must be at least 1"]),
    (["study", "--width", "nan"], ["--width must be a positive finite number"]),
    (["report", "{run}"], ["is not a study directory", "study.json"]),
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("flags") / "run"
    path.mkdir()
    config.save(SAVED, path / "config.json", {"versions": {}})
    return path


@pytest.mark.parametrize("argv, fragments", BAD_COMMAND_LINES, ids=[" ".join(a) for a, _ in BAD_COMMAND_LINES])
def test_bad_flags_are_one_line_errors(argv, fragments, run_dir, capsys):
    code = cli.main([arg.replace("{run}", str(run_dir)) for arg in argv])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, captured.err
    assert len(lines) == 1, captured.err
    for fragment in fragments:
        fragment = fragment.replace("{run}", str(run_dir))
        assert fragment in lines[0], (fragment, lines[0])
    assert json.loads((run_dir / "config.json").read_text())["config"] == json.loads(config.to_json(SAVED, {}))["config"]



def test_a_config_saved_before_settings_lived_with_models_still_loads(tmp_path):
    """Runs saved with width/loss/arch/hidden as Config fields: each kept where the model declares it."""
    old = {"model": "dcgan", "dataset": "mnist", "epochs": 2, "steps": None, "batch_size": 32, "seed": 0,
           "lr": 2e-4, "b1": 0.5, "b2": 0.999, "width": 0.125, "z_dim": 62, "loss": "hinge", "arch": "conv",
           "hidden": 500, "binarize": False, "subset": 128, "log_every": 2, "devices": 1, "eval_every": None,
           "tensorboard": False}
    (tmp_path / "config.json").write_text(json.dumps({"config": old}))
    cfg = config.load(tmp_path / "config.json")
    assert cfg.settings == {"width": 0.125, "loss": "hinge"} and cfg.width == 0.125 and cfg.batch_size == 32


@pytest.mark.parametrize("model, saved, loaded", [
    # Settings added with a new default: a run saved before them gets what it computed with (Setting.absent).
    ("wgan", {"width": 0.5, "n_critic": 1}, {"critic_norm": "none", "width": 0.5, "n_critic": 1}),
    ("wgan-gp", {"width": 0.5}, {"critic_norm": "none"}),
    ("began", {"width": 0.5, "lambda_k": 0.01}, {"reconstruction": "l1", "lambda_k": 0.01}),
    # sngan's loss, declared with the hinge loss it had, whose default later became bce.
    ("sngan", {"width": 0.5}, {"loss": "hinge"}),
    # Added with the behaviour runs already had: the model's default.
    ("began", {"width": 0.5}, {"d_norm": "none"})])
def test_a_setting_declared_after_a_run_was_saved_loads_as_the_run_computed(tmp_path, model, saved, loaded):
    cfg = config.make_config(model, {})
    record = {**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}, "settings": saved}
    (tmp_path / "config.json").write_text(json.dumps({"config": record}))
    restored = config.load(tmp_path / "config.json")
    assert loaded.items() <= restored.settings.items()
    assert set(restored.settings) == set(registry.get(model).settings)  # every declared setting has a value


def test_model_settings_are_declared_once_and_derive_the_flags(capsys):
    """--help lists each model's own settings with the models that have them; a model's setting is
    read like a field and saved under "settings"."""
    assert cli.main(["train", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    # A setting the models set alike: its default and its models; set differently: each model's default.
    assert "--loss LOSS adversarial loss pair on D's logits (default bce; models: cgan, dcgan, dragan, sngan)" \
        in help_text
    # Each model's default from its own Setting, not the first model's that declares the name.
    assert "(defaults: wgan batch, wgan-gp layer)" in help_text
    assert "(defaults: dragan 0.25, wgan-gp 10.0)" in help_text and "(default 1; models: wgan, wgan-gp)" in help_text
    assert "--hidden HIDDEN" in help_text and "models: vae-mlp" in help_text
    cfg = config.make_config("dcgan", {"loss": "hinge", "lr": 1e-3})
    assert cfg.loss == "hinge" and cfg.lr == 1e-3
    assert json.loads(config.to_json(cfg, {}))["config"]["settings"] == {"width": 1.0, "loss": "hinge"}


def test_a_preset_sets_its_values_under_the_flags_given():
    """--preset NAME: the model's defaults, then the preset's values, then the user's flags; saved in
    config.json with the values it resolved to."""
    from gan_lab import registry

    with_presets = [name for name in registry.names() if registry.get(name).presets]
    assert with_presets, "no model has a preset: the defaults are all the papers' again?"
    for name in with_presets:
        for preset, values in registry.get(name).presets.items():
            default, chosen = config.make_config(name, {}), config.make_config(name, {"preset": preset})
            assert chosen.preset == preset and default.preset is None
            assert all(getattr(chosen, key) == value for key, value in values.items())
            assert any(getattr(default, key) != value for key, value in values.items()), f"{name} {preset} changes nothing"
    name = with_presets[0]
    preset, values = next(iter(registry.get(name).presets.items()))
    cfg = config.make_config(name, {"preset": preset, "lr": 0.123})
    assert cfg.lr == 0.123  # the user's flag wins over the preset
    saved = json.loads(config.to_json(cfg, {}))["config"]
    assert saved["preset"] == preset and saved["lr"] == 0.123
    from gan_lab import runs

    assert runs.describe_plan(cfg).startswith(f"{name} (--preset {preset}) on ")  # the line printed at the start


def test_a_preset_may_only_set_what_its_model_has():
    from gan_lab import registry

    with pytest.raises(ValueError, match="does not have"):
        registry.register("presets-test-model", "a model whose preset sets a setting it lacks",
                          presets={"paper": {"gamma": 0.5}})(lambda cfg: None)
