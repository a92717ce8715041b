"""Scoring trained models: 10,000 generated images against the 10,000 test images with the
shipped evaluator networks (metrics.py), plus the test ELBO for VAEs. Glue between a run and
the pure metric functions."""

from __future__ import annotations

import json
from pathlib import Path

import jax

from gan_lab import data, files, metrics, runs, sampling

EVAL_SAMPLES = 10_000


def score(cfg, model, state, test_images, n: int = EVAL_SAMPLES, seed: int = 0, elbo=None) -> dict:
    """Every metric for one model state. Generated images go through uint8, exactly like the real ones
    (and like `gan_lab sample --n`), so both sets are quantised the same way."""
    generated, labels = sampling.export_samples(model, state, jax.random.key(seed), n)
    results = metrics.evaluate_samples(data.to_model_range(generated), test_images, cfg.dataset,
                                       labels=labels if model.conditional else None, seed=seed)
    if elbo is not None:
        results.update(elbo(state))
    return results


def test_set(cfg, data_dir=None):
    """The real test images (float, model range) that every score is computed against."""
    images, _ = data.load_split(cfg.dataset, "test", data_dir)
    return data.to_model_range(images)


def elbo_scorer(cfg, model, data_dir=None):
    """For models with an `evaluate` (the VAEs): state -> {"test_neg_elbo": nats, ...}."""
    return runs.make_evaluator(model, *runs.load_images(cfg, "test", data_dir)) if model.evaluate else None


def evaluate_run(run_dir: Path, n: int = EVAL_SAMPLES, seed: int = 0, data_dir=None) -> tuple[dict, Path]:
    """Score a run's latest checkpoint; results are added to RUN_DIR/metrics.json under that step."""
    run_dir = Path(run_dir)
    cfg, model, state, step = runs.load_trained(run_dir)
    # The epochs actually trained (from the checkpoint's step), not the run's target.
    results = {"model": cfg.model, "step": step, "epochs": float(runs.epochs_trained(cfg, step)), "seed": cfg.seed,
               **score(cfg, model, state, test_set(cfg, data_dir), n, seed, elbo_scorer(cfg, model, data_dir))}
    path = run_dir / "metrics.json"
    saved = json.loads(path.read_text()) if path.exists() else {}
    saved[f"step_{step}_n{n}_seed{seed}"] = results
    files.replace_atomically(path, json.dumps(saved, indent=2) + "\n")
    return results, path


def report_lines(results: dict) -> list[str]:
    lines = [f"{results['model']} on {results['dataset']}, {results['epochs']:g} epochs ({results['step']} steps), "
             f"seed {results['seed']}",
             *metrics.format_report(results)]
    if "test_neg_elbo" in results:
        lines.append(f"test negative ELBO (nats)  {results['test_neg_elbo']:.2f}")
    return lines
