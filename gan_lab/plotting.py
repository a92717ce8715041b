"""Pictures: image grids as PNGs (pure reshape/transpose, then matplotlib) and loss curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def to_unit_range(images) -> np.ndarray:
    """Model images in [-1, 1] (N, H, W[, 1]) -> float (N, H, W) in [0, 1]."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 4:
        images = images[..., 0]
    return np.clip((images + 1.0) / 2.0, 0.0, 1.0)


def image_grid(images, ncol: int, pad: int = 2, pad_value: float = 1.0) -> np.ndarray:
    """(N, H, W) in [0, 1] -> one (rows*(H+pad)+pad, ncol*(W+pad)+pad) image; missing cells are blank."""
    images = np.asarray(images)
    n, h, w = images.shape
    nrow = -(-n // ncol)
    cells = np.full((nrow * ncol, h + pad, w + pad), pad_value, dtype=np.float32)
    cells[:n, pad:, pad:] = images
    grid = cells.reshape(nrow, ncol, h + pad, w + pad).transpose(0, 2, 1, 3).reshape(nrow * (h + pad), ncol * (w + pad))
    return np.pad(grid, ((0, pad), (0, pad)), constant_values=pad_value)


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscaling: crisp pixels, no blur."""
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def save_grid(images, path: Path, ncol: int = 8, scale: int = 3) -> Path:
    """Save model images (in [-1, 1]) as a grayscale PNG grid, white on black as the datasets are."""
    grid = image_grid(to_unit_range(images), ncol)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    plt.imsave(path, upscale(grid, scale), cmap="gray", vmin=0.0, vmax=1.0)
    return path


def save_loss_curves(records: list[dict], path: Path, title: str) -> Path:
    """One panel per metric against the step, from metrics.jsonl records."""
    keys = [k for k in records[0] if k not in ("step", "epoch", "steps_per_sec", "time")] if records else []
    fig, axes = plt.subplots(1, max(1, len(keys)), figsize=(3.2 * max(1, len(keys)), 2.8), squeeze=False)
    steps = [r["step"] for r in records]
    for ax, key in zip(axes[0], keys):
        ax.plot(steps, [r[key] for r in records], lw=1.2)
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
