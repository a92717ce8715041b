"""Shared fixtures. Tests read the real datasets from $GAN_LAB_DATA (CI sets it)."""

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Directory holding <dataset>/<file>.gz for mnist and fashion-mnist.

    Defaults to ../shared/datasets beside the checkout so local runs work; only the tests
    know that path, the project itself never does.
    """
    path = Path(os.environ.get("GAN_LAB_DATA") or Path(__file__).parents[2] / "shared" / "datasets")
    if not (path / "mnist").is_dir() or not (path / "fashion-mnist").is_dir():
        pytest.fail(f"no datasets in {path}: set GAN_LAB_DATA to a directory holding "
                    f"mnist/ and fashion-mnist/ IDX .gz files", pytrace=False)
    return path
