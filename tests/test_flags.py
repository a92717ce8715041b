"""Every flag is checked where it is parsed: one table of bad command lines, each driven through the
CLI's main() and answered with exit code 2 and one line on stderr that names the flag and the fix.
In-process (cli.main never exits the process), so the whole table takes seconds."""

import json

import pytest

from gan_lab import cli, config

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
    # names
    (["train", "gan9"], ["unknown model 'gan9'", "dcgan"]),
    (["compare", "dcgan", "--datasets", "cifar"], ["unknown dataset 'cifar'"]),
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
        assert fragment in lines[0], (fragment, lines[0])
    assert json.loads((run_dir / "config.json").read_text())["config"] == json.loads(config.to_json(SAVED, {}))["config"]

