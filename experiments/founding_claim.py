"""Issue 27: does MNIST forgive settings that Fashion-MNIST does not? Four models' sweeps, pooled.

    python experiments/founding_claim.py                  # the four sweeps (resumable), then the page
    python experiments/founding_claim.py --report-only    # the page from the jobs done so far
    python experiments/founding_claim.py --shard 0/2 & python experiments/founding_claim.py --shard 1/2
                                                          # two processes sharing the jobs

Each model in MODELS is swept by `gan_lab sweep` (the command, in this process) with the same budget:
TRIALS settings drawn around its defaults (sweep seed 0), each trained for one epoch on both datasets
at width 0.5 and the sweep's own seed (SEEDS), scored on N_EVAL samples. Width is fixed so that a sweep's cost
depends on its model alone (a median of ~2.4 minutes a job on 2 busy cores for dcgan, cgan and vae, ~6.3
for dragan, whose gradient penalty differentiates D twice); the width-varying search is
`gan_lab sweep MODEL` without --fix. The four are dcgan, cgan (the same nets with labels), vae (no
adversary) and dragan (a critic-regularised GAN: a gradient penalty around the data, and the one of
those that learns as well as dcgan at this budget, experiments/results/learning_curves.md).

Why TRIALS = 20 per model: the pooled McNemar test over 4 x 20 = 80 paired settings has power ~0.98 to
see the founding claim's picture (30% of settings working on MNIST only, 5% on Fashion-MNIST only) and
~0.74 for a milder one (20% vs 5%); one model's 20 pairs alone have ~0.32 (sweep_report.mcnemar_power;
the page states the power at the pairs it has). Each model's own fraction of working settings has a 95%
interval about +-0.2 wide at 20.

Writes the pooled page to experiments/results/founding_claim.md (included in docs/quality.md), its
picture to samples/founding_claim.png, and each model's quality spread and sample sheet to
samples/founding_claim-<model>-quality.png and -samples.png (about a minute a model: the sheet loads
every run). `gan_lab report SWEEP_DIR` writes a sweep's own page, with its table of settings, in its
report/ under experiments/out/sweeps/.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gan_lab import cli, runtime, study, sweep_report

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))
from docs_sync import write_result  # noqa: E402  (beside this script)

MODELS = ("dcgan", "cgan", "vae", "dragan")
# Each model's sweep seed (its draws and its training seed): different seeds make the four sweeps'
# settings independent draws, which the pooled test needs (sweep_report.pooled). cgan's ran first.
SEEDS = {"cgan": 0, "dcgan": 1, "vae": 2, "dragan": 3}
TRIALS = 20
EPOCHS = 1
WIDTH = 0.5
N_EVAL = 5000
SWEEPS = ROOT / "experiments" / "out" / "sweeps"
RESULTS = ROOT / "experiments" / "results" / "founding_claim.md"
FIGURE = ROOT / "samples" / "founding_claim.png"
COMMAND = "python experiments/founding_claim.py"


def sweep_dir(model: str) -> Path:
    return SWEEPS / f"{model}-e{EPOCHS}-w{WIDTH}-seed{SEEDS[model]}"


def figure_path(model: str, kind: str) -> Path:
    """samples/founding_claim-<model>-<kind>.png: a sweep's own pictures, beside the pooled one."""
    return FIGURE.with_name(f"{FIGURE.stem}-{model}-{kind}.png")


def run_sweep(model: str, data_dir=None, shard=None) -> None:
    argv = ["sweep", model, "--trials", str(TRIALS), "--epochs", str(EPOCHS), "--n-eval", str(N_EVAL),
            "--fix", f"width={WIDTH}", "--seed", str(SEEDS[model]), "--dir", str(sweep_dir(model))]
    if data_dir:
        argv += ["--data-dir", str(data_dir)]
    if shard:
        argv += ["--shard", shard]
    code = cli.main(argv)
    if code:
        raise SystemExit(code)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--report-only", action="store_true", help="the page from the jobs done so far")
    parser.add_argument("--shard", default=None, metavar="K/N",
                        help="run only shard K of N (0-based) of each sweep, e.g. one process per core")
    args = parser.parse_args()
    runtime.configure()
    if not args.report_only:
        for model in args.models:  # model-major: a stopped command has whole sweeps
            run_sweep(model, args.data_dir, args.shard)
    # Sweeps with a finished job (a sweep writes sweep.json before its first job ends).
    started = [model for model in args.models if list(sweep_dir(model).glob(f"trial*/*/{study.RESULT_FILE}"))]
    if not started:
        raise SystemExit(f"no sweep job finished yet under {SWEEPS.relative_to(ROOT)}; run {COMMAND}")
    loaded = sweep_report.load_sweeps([sweep_dir(model) for model in started], args.data_dir)
    lines, answers = sweep_report.pooled_page(loaded, FIGURE)
    done = {model: len(rows) for model, (_, rows) in loaded.items()}
    status = ("every sweep complete" if all(n == TRIALS for n in done.values()) and len(done) == len(MODELS) else
              "in progress: " + ", ".join(f"{model} {done.get(model, 0)} of {TRIALS} settings" for model in MODELS))
    header = [f"Command: `{COMMAND}` ({status}). Each sweep: {TRIALS} settings around the model's defaults "
              f"at width {WIDTH}, one epoch on each dataset, {N_EVAL:,} samples scored; its own seed for the draws "
              f"and the training ({', '.join(f'{m} {s}' for m, s in SEEDS.items())}).", ""]
    # The page names its picture by file name; here the picture lives in samples/.
    lines = [line.replace(f"]({FIGURE.name})", f"](../../samples/{FIGURE.name})") for line in lines]
    lines += ["**Every setting, drawn.** Per model: the spread of sigma over its settings on each dataset, and "
              f"{sweep_report.SHEET_SAMPLES} samples of every setting on MNIST beside the same noise on "
              "Fashion-MNIST, framed green where "
              "the setting works and red where it fails.", ""]
    for model, (settings, rows) in loaded.items():
        quality_plot = sweep_report.distribution_plot(rows, model, figure_path(model, "quality"))
        sheet = sweep_report.sample_sheet(sweep_dir(model), settings, rows, figure_path(model, "samples"))
        lines += [f"![{model}: sigma over settings](../../samples/{quality_plot.name})", "",
                  f"![{model}: every setting on both datasets](../../samples/{sheet.name})", ""]
    write_result(RESULTS, "\n".join(["# Does MNIST forgive settings that Fashion-MNIST does not?", "", *header, *lines]))
    (SWEEPS / "founding_claim-answers.json").write_text(json.dumps(answers, indent=1, default=float) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}, {FIGURE.relative_to(ROOT)} and each model's "
          f"{figure_path('MODEL', 'quality').relative_to(ROOT)} and -samples.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
