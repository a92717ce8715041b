"""Issue 26's measured search for defaults that learn: for each model whose paper settings do not
learn at the study's CPU budget, a few candidate settings (the collections' practical ones, or a
weaker penalty), each trained on MNIST and Fashion-MNIST with the same budget and seed and scored.

    python experiments/defaults_search.py                     # every model and candidate below
    python experiments/defaults_search.py --models wgan dragan
    python experiments/defaults_search.py --report-only       # the table from the jobs finished so far

Every candidate is a study (gan_lab/study.py) under experiments/out/defaults_search/<model>/<candidate>/:
its jobs are ordinary run directories, written as soon as they end, and a stopped search continues
where it stopped. The budget is the study's CPU setting (1 epoch = 60,000 training images, width 0.5,
training seed 0), each trained model scored on one draw of 10,000 samples (sample seed 0) against the
test set. The paper settings' row and the dcgan reference are the same job (seed 0, first draw of
sample seed 0) of the kept study, experiments/results/compare_models.json (compare_models.py), which
is the same computation. A candidate "learns" when it draws every class (class coverage 1.0) and its
FD is at most 2x dcgan's at the same budget (issue 26's bar; a VAE's: 2x the best VAE FD on the table,
the study's VAE jobs and the VAE candidates). Writes experiments/results/defaults_search.md.

A candidate's settings go over what the model computed when the search began, so a rerun redoes what
ran, whatever today's defaults are: the paper's settings (each model's `--preset paper`), with wgan's
critic without normalisation as it then was (PINNED); acgan's and the VAEs' candidates (OVER_DEFAULTS)
over the defaults, the VAEs' with their init of then (PINNED) and acgan's candidates each setting the
one thing that changed since (its class weight).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from gan_lab import files, quality, registry, runtime, study

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))
from docs_sync import write_result  # noqa: E402  (beside this script)

OUT = ROOT / "experiments" / "out" / "defaults_search"
RESULTS = ROOT / "experiments" / "results" / "defaults_search.md"
KEPT = ROOT / "experiments" / "results" / "defaults_search.json"  # {model/candidate/job: result}
STUDY_KEPT = ROOT / "experiments" / "results" / "compare_models.json"
STUDY_TAG = "e1-w0.5-sNone-ev10000x2"  # the kept study at the same budget: the paper rows and dcgan's
DATASETS = ("mnist", "fashion-mnist")
EPOCHS, WIDTH, SEED, N_EVAL, SAMPLE_SEEDS = 1, 0.5, 0, 10_000, (0,)

ADAM = {"lr": 2e-4, "b1": 0.5, "b2": 0.999}  # DCGAN's Adam, both collections' optimiser
# name -> settings over the model's paper defaults; the order is the order they run in.
CANDIDATES = {
    "wgan": {
        "adam-1critic-g5x": {**ADAM, "optimizer": "adam", "n_critic": 1, "g_lr_scale": 5.0},  # the TF collection's
        "adam": {**ADAM, "optimizer": "adam"},  # the PyTorch collection's (5 critic steps)
        "adam-1critic": {**ADAM, "optimizer": "adam", "n_critic": 1},  # round 2: G at 5x overtook the critic
        # round 3: at c = 0.01 nearly half the critic's weights sit at the bound after a step
        # (tests/test_critics.py): a wider box leaves the critic more functions to tell images apart
        "adam-1critic-g5x-clip0.05": {**ADAM, "optimizer": "adam", "n_critic": 1, "g_lr_scale": 5.0, "clip": 0.05},
        # round 4: at 4 epochs the default's MNIST FD was 8.9x dcgan's (experiments/learning_curves.py); both
        # collections keep the infoGAN D's BatchNorm in the critic, clipping its scales with the rest
        "adam-1critic-g5x-bn": {**ADAM, "optimizer": "adam", "n_critic": 1, "g_lr_scale": 5.0, "critic_norm": "batch"},
    },
    "wgan-gp": {
        "adam-1critic-g5x": {**ADAM, "n_critic": 1, "g_lr_scale": 5.0},  # TF's schedule, the paper's lambda 10
        "adam": {**ADAM},  # the PyTorch collection's
        "adam-1critic": {**ADAM, "n_critic": 1},  # round 2: G at 5x overtook the critic (D's loss > 0)
        "adam-1critic-d4x": {"lr": 4e-4, "b1": 0.5, "b2": 0.999, "n_critic": 1, "g_lr_scale": 0.25},  # TTUR's way
        # round 3: wgan's critic learned once it had BatchNorm, which the penalty rules out here; the
        # paper's recommended drop-in, LayerNorm, with the current default's schedule
        "adam-1critic-layernorm": {**ADAM, "n_critic": 1, "critic_norm": "layer"},
    },
    "dragan": {
        "gp0.25": {"gp_weight": 0.25},  # the collections' weight (here on the logit, as TF's)
        "gp1": {"gp_weight": 1.0},
    },
    "began": {
        "gamma0.75-2e-4": {"gamma": 0.75, "lr": 2e-4},  # the TF collection's
        "gamma0.75-2e-4-g5x": {"gamma": 0.75, "lr": 2e-4, "g_lr_scale": 5.0},
        # round 2: k rose ~1.5e-4 a step (to 0.13 in the epoch) while G's images were reconstructed 5x
        # better than the real ones: a faster k makes D push back on them sooner
        "gamma0.75-2e-4-k0.01": {"gamma": 0.75, "lr": 2e-4, "lambda_k": 0.01},
        # round 3: k0.01 was the first to help (k's pace is the brake); faster still, and the PyTorch
        # collection's gamma 1
        "gamma0.75-2e-4-k0.05": {"gamma": 0.75, "lr": 2e-4, "lambda_k": 0.05},
        "gamma1-2e-4-k0.01": {"gamma": 1.0, "lr": 2e-4, "lambda_k": 0.01},
        # round 4: wgan's critic learned once it had the collections' BatchNorm; the same for D here
        "gamma0.75-2e-4-k0.01-bn": {"gamma": 0.75, "lr": 2e-4, "lambda_k": 0.01, "d_norm": "batch"},
        # round 5: the TF collection's BEGAN.py, read again, trains G at 5x D's rate (which only the
        # slow k of round 1 had been tried with) and has BatchNorm in D's FC layers: G at 5x over today's
        # default, and TF's recipe as far as the settings go (its L is an L2 norm over the batch)
        "gamma0.75-2e-4-k0.01-g5x": {"gamma": 0.75, "lr": 2e-4, "lambda_k": 0.01, "g_lr_scale": 5.0},
        "gamma0.75-2e-4-g5x-bn": {"gamma": 0.75, "lr": 2e-4, "g_lr_scale": 5.0, "d_norm": "batch"},
        "gamma0.75-2e-4-k0.01-g5x-bn": {"gamma": 0.75, "lr": 2e-4, "lambda_k": 0.01, "g_lr_scale": 5.0,
                                        "d_norm": "batch"},
        # round 6: TF's L, the L2 norm of the batch's errors over its size (--reconstruction l2-norm), over
        # today's default, and with the rest of TF's recipe (k unclipped there, clipped to [0, 1] here)
        "gamma0.75-2e-4-k0.01-l2norm": {"gamma": 0.75, "lr": 2e-4, "lambda_k": 0.01, "reconstruction": "l2-norm"},
        "tf-recipe": {"gamma": 0.75, "lr": 2e-4, "g_lr_scale": 5.0, "d_norm": "batch", "reconstruction": "l2-norm"},
        # round 7: with TF's L every digit was drawn (MNIST FD 970.6 -> 834.3) but one Fashion-MNIST class
        # lost. Its L is 6-8x the L1 mean here (the runs' logged d_real), so k moves that much faster at the
        # same lambda_k: about the L1 default's pace of k, and the PyTorch collection's gamma 1
        "gamma0.75-2e-4-k0.002-l2norm": {"gamma": 0.75, "lr": 2e-4, "lambda_k": 0.002, "reconstruction": "l2-norm"},
        "gamma1-2e-4-k0.01-l2norm": {"gamma": 1.0, "lr": 2e-4, "lambda_k": 0.01, "reconstruction": "l2-norm"},
    },
    "ebgan": {
        "g5x": {"g_lr_scale": 5.0},  # the TF collection's G rate
        "margin0.3": {"margin": 0.3},
        "g5x-margin2": {"g_lr_scale": 5.0, "margin": 2.0},  # round 2: a higher bar for the fakes' energy
    },
    # acgan collapsed on 2 of 3 MNIST seeds in the study (seed 0: 1 class). Its class terms pull G
    # toward whatever D's classifier reads as a digit; a lighter weight on them:
    "acgan": {"class0.1": {"class_weight": 0.1}, "class0.3": {"class_weight": 0.3}},
    # The conv VAEs drew 4-5 classes on MNIST (study: vae coverage 0.43); without BatchNorm, the GANs'
    # N(0, 0.02) init shrinks the signal's variance ~150x in the first convolution. Flax's default
    # init, as vae-mlp's:
    "vae": {"lecun-init": {"init": "lecun"}},
    "cvae": {"lecun-init": {"init": "lecun"}},
}
# Their bar is 2x the best VAE's FD, not dcgan's (issue 26; gan_lab/quality.py).
VAES = tuple(name for name in registry.names() if registry.get(name).family == "VAEs")


# What every candidate goes over: the paper's settings (each model's `--preset paper`, its defaults
# when the search began), with the critics as they then were; so a rerun redoes what ran.
# acgan and the VAEs had no paper preset when their candidates ran: those went over their defaults
# (acgan's were the paper's; every acgan candidate sets the class weight, the one default changed since).
OVER = {"preset": "paper"}
OVER_DEFAULTS = ("acgan", "vae", "cvae")
PINNED = {"wgan": {"critic_norm": "none"},  # wgan's paper preset keeps today's BatchNorm critic
          "vae": {"init": "normal-0.02"}, "cvae": {"init": "normal-0.02"}}  # their init when the search began


def training(model: str, candidate: dict) -> dict:
    over = {} if model in OVER_DEFAULTS else OVER
    return {**study.training_settings(EPOCHS, WIDTH, None), **over, **PINNED.get(model, {}), **candidate}


def run_candidate(model: str, name: str, show_progress: bool) -> dict:
    """The candidate's result per dataset, training and scoring what is not finished."""
    jobs = study.plan([model], DATASETS, [SEED])
    results = study.run_study(OUT / model / name, jobs, training(model, CANDIDATES[model][name]), N_EVAL, SAMPLE_SEEDS,
                              show_progress=show_progress)
    return {job.dataset: result for job, result in results.items()}


def keep(model: str, name: str, results: dict) -> None:
    kept = json.loads(KEPT.read_text()) if KEPT.exists() else {}
    for dataset, result in results.items():
        kept[f"{model}/{name}/{dataset}"] = {"settings": CANDIDATES[model][name], **result}
    files.replace_atomically(KEPT, json.dumps(kept, indent=1, sort_keys=True) + "\n")


def first_draw(result: dict) -> dict:
    return result["scores"][0]


def study_row(model: str, dataset: str) -> dict | None:
    """The kept study's seed-0 job of `model` at this budget: its first draw (sample seed 0)."""
    jobs = json.loads(STUDY_KEPT.read_text()).get(STUDY_TAG, {})
    result = jobs.get(f"{model}-{dataset}-seed{SEED}")
    return None if result is None else first_draw(result)


def table() -> str:
    kept = json.loads(KEPT.read_text()) if KEPT.exists() else {}
    dcgan = {dataset: study_row("dcgan", dataset)["fd"] for dataset in DATASETS}
    # The VAEs' reference: the best VAE's FD on the table (the study's seed-0 jobs and the candidates).
    best_vae = {dataset: min([study_row(m, dataset)["fd"] for m in VAES] +
                             [first_draw(r)["fd"] for key, r in kept.items()
                              if key.split("/")[0] in VAES and key.endswith("/" + dataset)]) for dataset in DATASETS}
    lines = [
        f"Budget: {EPOCHS} epoch (60,000 training images), width {WIDTH}, training seed {SEED}; one draw of "
        f"{N_EVAL:,} samples scored against the test set. A setting learns when it draws every class (coverage "
        f"1.0) and its FD is at most {quality.FD_BAR:g}x dcgan's (MNIST {dcgan['mnist']:.1f}, Fashion-MNIST "
        f"{dcgan['fashion-mnist']:.1f}, the kept study's seed 0); a VAE's, 2x the best VAE's on this table (MNIST "
        f"{best_vae['mnist']:.1f}, Fashion-MNIST {best_vae['fashion-mnist']:.1f}), and \"x ref\" is the FD over that "
        "reference. \"paper\" rows are the kept study's seed-0 jobs "
        "(compare_models.py). Command: `python experiments/defaults_search.py`. Each candidate goes over the paper's "
        "settings (`--preset paper`; for wgan also `--critic-norm none`, its critic when the search began); "
        "acgan's and the VAEs' go over their defaults when the search began (the VAEs' with `--init normal-0.02`), "
        "and acgan's \"paper\" row is its defaults of then, the paper's class weight 1.",
        "",
        "| model | setting | over the paper's | dataset | FD ↓ | x ref | coverage ↑ | precision ↑ | recall ↑ | "
        "learns | min/job |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model, candidates in CANDIDATES.items():
        start = "paper" if "paper" in registry.get(model).presets else "former default"  # the study's seed-0 job
        rows = [(start, {}, dataset, study_row(model, dataset), None) for dataset in DATASETS]
        for name, settings in candidates.items():
            for dataset in DATASETS:
                result = kept.get(f"{model}/{name}/{dataset}")
                if result is not None:
                    rows.append((name, settings, dataset, first_draw(result), result["train_seconds"] / 60))
        for name, settings, dataset, scores, minutes in rows:
            if scores is None:
                continue
            ratio = scores["fd"] / (best_vae if model in VAES else dcgan)[dataset]
            learns = quality.learns(scores["fd"], (best_vae if model in VAES else dcgan)[dataset], scores["class_coverage"])
            shown = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in settings.items())
            lines.append(f"| {model} | {name} | {shown or '–'} | {dataset} | {scores['fd']:.1f} | {ratio:.2f} | "
                         f"{scores['class_coverage']:.2f} | {scores['precision']:.3f} | {scores['recall']:.3f} | "
                         f"{'yes' if learns else '**no**'} | {'–' if minutes is None else f'{minutes:.1f}'} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    parser.add_argument("--report-only", action="store_true", help="write the table from the finished jobs only")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    runtime.configure()
    if not args.report_only:
        # Round-robin, first candidates first: a search stopped early has tried every model.
        order = sorted(((i, model, name) for model in args.models for i, name in enumerate(CANDIDATES[model])),
                       key=lambda item: item[0])
        for _, model, name in order:
            started = time.perf_counter()
            keep(model, name, run_candidate(model, name, not args.no_progress))
            print(f"{model} {name}: {time.perf_counter() - started:.0f} s", flush=True)
            write_result(RESULTS, table())
    write_result(RESULTS, table())
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
