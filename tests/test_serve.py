"""gan_lab serve: the explorer's API through FastAPI's test client, on runs trained here on real data."""

import io
import json
import shutil

import numpy as np
import PIL.Image
import pytest

from gan_lab import cli, explorer, files, runs
from gan_lab.errors import UserError
from tests.helpers import TINY_SUBSET, tiny_config

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install -e '.[serve]')")
from fastapi.testclient import TestClient  # noqa: E402

from gan_lab import serve  # noqa: E402

CELL = 30  # a 28-px image and its 2-px border in plotting.image_grid


@pytest.fixture(scope="module")
def served(tmp_path_factory, data_dir):
    """A runs directory with a conditional and an unconditional run (3/8 of an epoch and one epoch), a
    damaged run, a run with no checkpoint yet, and a symlink to a run outside the directory."""
    root = tmp_path_factory.mktemp("runs")
    # The suite's one tiny shape (tests/helpers.py): each training step compiles once for the suite.
    for model, dataset, steps in (("cgan", "mnist", 3), ("dcgan", "fashion-mnist", 8)):
        cfg = tiny_config(model, dataset=dataset, steps=steps, subset=TINY_SUBSET)
        runs.train_run(cfg, out=root / f"{model}-{dataset}", data_dir=data_dir, show_progress=False)
    (root / "damaged").mkdir()
    (root / "damaged" / "config.json").write_text('{"config": {"model": "cgan", "data')  # cut mid-write
    shutil.copytree(root / "cgan-mnist", root / "no-checkpoint", ignore=shutil.ignore_patterns("checkpoints"))
    outside = tmp_path_factory.mktemp("outside")
    shutil.copytree(root / "dcgan-fashion-mnist", outside / "secret")
    (root / "link").symlink_to(outside / "secret", target_is_directory=True)
    return root, TestClient(serve.create_app(root))


def pixels(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return np.asarray(PIL.Image.open(io.BytesIO(response.content)))


def cells(grid: np.ndarray, columns: int) -> list[np.ndarray]:
    """The images of a grid PNG, in order."""
    rows = (grid.shape[0] - 2) // CELL
    return [grid[2 + r * CELL:r * CELL + CELL, 2 + c * CELL:c * CELL + CELL] for r in range(rows) for c in range(columns)]


def latent_text(vector) -> str:
    return ",".join(str(v) for v in vector)


def test_the_list_shows_every_run_with_its_status_and_the_damage(served):
    root, client = served
    listing = client.get("/api/runs").json()
    rows = {row["id"]: row for row in listing["runs"]}
    assert set(rows) == {"cgan-mnist", "dcgan-fashion-mnist", "damaged", "no-checkpoint"}  # not the symlink
    assert rows["cgan-mnist"]["conditional"] and not rows["dcgan-fashion-mnist"]["conditional"]
    # What each run trained (its newest checkpoint), beside what it was asked for: --steps 3 came before
    # cgan's 25 epochs, and reaching it is finishing, not being stopped.
    assert {key: rows["cgan-mnist"][key] for key in ("step", "epochs", "target_epochs", "target_steps", "status")} \
        == {"step": 3, "epochs": 0.38, "target_epochs": 25, "target_steps": 3, "status": "finished"}
    assert rows["dcgan-fashion-mnist"]["epochs"] == 1.0 and rows["dcgan-fashion-mnist"]["status"] == "finished"
    assert rows["no-checkpoint"]["status"] == "stopped" and rows["no-checkpoint"]["epochs"] == 0.0
    assert rows["dcgan-fashion-mnist"]["class_names"][9] == "Ankle boot"
    assert "config.json unreadable" in rows["damaged"]["error"]


def test_a_grid_is_a_pure_function_of_seed_class_and_sliders(served):
    _, client = served
    url = "/api/runs/cgan-mnist/grid.png?seed=5&n=16&columns=4"
    first = pixels(client.get(url))
    assert first.shape == (4 * CELL + 2, 4 * CELL + 2)
    assert np.array_equal(first, pixels(client.get(url)))  # the same view, the same picture
    assert not np.array_equal(first, pixels(client.get(url.replace("seed=5", "seed=6"))))
    assert not np.array_equal(first, pixels(client.get(url + "&class=3")))
    assert not np.array_equal(first, pixels(client.get(url + "&shift=2.5,-1")))
    # The first 16 samples of a 64-sample grid are the 16 of a 16-sample grid: a sample keeps its latent.
    big = cells(pixels(client.get("/api/runs/cgan-mnist/grid.png?seed=5&n=64&columns=8")), 8)
    assert all(np.abs(a.astype(int) - b).max() <= 1 for a, b in zip(cells(first, 4), big[:16]))
    download = pixels(client.get(url + "&scale=4"))
    assert download.shape == (4 * first.shape[0], 4 * first.shape[1])


def test_a_held_style_is_drawn_as_every_class_and_walked_from_one_sample_to_another(served):
    _, client = served
    latents = client.get("/api/runs/cgan-mnist/latents?seed=2&n=16").json()["latents"]
    assert np.array(latents).shape == (16, 62)  # cgan's latent
    wardrobe = cells(pixels(client.get(f"/api/runs/cgan-mnist/wardrobe.png?z={latent_text(latents[7])}")), 10)
    for label in (0, 4, 9):  # each class of the wardrobe is that sample of a grid of that class
        grid = cells(pixels(client.get(f"/api/runs/cgan-mnist/grid.png?seed=2&n=16&columns=4&class={label}")), 4)
        assert np.abs(wardrobe[label].astype(int) - grid[7]).max() <= 1
    walk = cells(pixels(client.get(f"/api/runs/cgan-mnist/walk.png?z0={latent_text(latents[3])}&z1={latent_text(latents[7])}"
                                   "&steps=6&class=4")), 6)
    grid = cells(pixels(client.get("/api/runs/cgan-mnist/grid.png?seed=2&n=16&columns=4&class=4")), 4)
    assert np.abs(walk[0].astype(int) - grid[3]).max() <= 1 and np.abs(walk[-1].astype(int) - grid[7]).max() <= 1
    assert not np.array_equal(walk[2], walk[0])


@pytest.mark.parametrize("url, status, message", [
    ("/api/runs/cgan-mnist/grid.png?n=65", 400, "n: Input should be less than or equal to 64"),
    ("/api/runs/cgan-mnist/grid.png?n=0", 400, "n: "),
    ("/api/runs/cgan-mnist/grid.png?seed=-1", 400, "seed: "),
    ("/api/runs/cgan-mnist/grid.png?seed=x", 400, "seed: "),
    ("/api/runs/cgan-mnist/grid.png?class=10", 400, "class 10 is out of range: classes are 0..9"),
    ("/api/runs/dcgan-fashion-mnist/grid.png?class=1", 400, "unconditional"),
    ("/api/runs/cgan-mnist/grid.png?shift=nan", 400, "shift contains NaN"),
    ("/api/runs/cgan-mnist/grid.png?shift=1,2,3,4,5,6,7,8,9", 400, "shift has 9 numbers; at most 8"),
    ("/api/runs/cgan-mnist/grid.png?shift=9", 400, "beyond ±4"),
    ("/api/runs/cgan-mnist/grid.png?scale=9", 400, "scale: "),
    ("/api/runs/cgan-mnist/wardrobe.png?z=1,2", 400, "z must have this run's 62 numbers (got 2)"),
    ("/api/runs/cgan-mnist/wardrobe.png", 400, "z: Field required"),
    ("/api/runs/cgan-mnist/wardrobe.png?z=" + ",".join(["0"] * 61 + ["inf"]), 400, "z contains NaN or infinity"),
    ("/api/runs/dcgan-fashion-mnist/wardrobe.png?z=" + ",".join(["0"] * 100), 400, "no classes"),
    ("/api/runs/cgan-mnist/walk.png?z0=1&z1=1&steps=1", 400, "steps: "),
    ("/api/runs/nope/grid.png", 404, "no run 'nope'"),
    ("/api/runs/link/grid.png", 404, "no run 'link'"),  # a symlink out of the directory
    ("/api/runs/%2e%2e/grid.png", 404, "no run '..'"),
    ("/api/runs/cgan-mnist/%2e%2e/%2e%2e/grid.png", 404, "no run"),
    ("/api/runs//etc/grid.png", 404, "no run"),
    ("/api/runs/damaged/grid.png", 409, "run damaged cannot be drawn from"),
    ("/api/runs/no-checkpoint/grid.png", 409, "has no checkpoint yet"),
    ("/api/runs/cgan-mnist/grid.png?seed=1&" + "x" * 20_000, 414, "longer than"),
    ("/elsewhere", 404, "the API is under /api/runs"),
])
def test_every_bad_request_is_a_4xx_with_one_line(served, url, status, message):
    _, client = served
    response = client.get(url)
    assert response.status_code == status
    error = response.json()["error"]
    assert message in error and "\n" not in error


def test_only_get_and_the_others_keep_serving_after_errors(served):
    _, client = served
    assert client.post("/api/runs", content=b"x" * 1000).status_code == 405
    assert client.get("/api/runs/damaged/grid.png").status_code == 409
    assert client.get("/api/runs/cgan-mnist/grid.png?n=4").status_code == 200


def test_the_page_and_its_script_are_served_without_the_internet(served):
    _, client = served
    page = client.get("/").text
    script = client.get("/explorer.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    for text in (page, script.text):
        assert "http://" not in text.replace("http://www.w3.org", "") and "https://" not in text  # nothing fetched


def test_a_run_in_training_is_watched_and_redrawn_from_its_newest_checkpoint(served, data_dir):
    root, client = served
    run_dir = root / "dcgan-fashion-mnist"
    url = "/api/runs/dcgan-fashion-mnist/grid.png?seed=0&n=4"
    before = pixels(client.get(url))
    lock = files.RunLock(run_dir).acquire()  # as `gan_lab train` holds it
    try:
        assert client.get("/api/runs/dcgan-fashion-mnist/training").json()["status"] == "training"
    finally:
        lock.release()
    assert client.get("/api/runs/dcgan-fashion-mnist/training").json()["status"] == "finished"  # its 8 steps
    # 8 steps of 32 of the 256 images: one epoch ended, and its grid is the newest.
    assert client.get("/api/runs/dcgan-fashion-mnist/epoch.png").content == (run_dir / "samples" / "epoch_001.png").read_bytes()
    assert pixels(client.get("/api/runs/dcgan-fashion-mnist/losses.png")).ndim == 3

    # on_start comes before the first step, with the lock held: the explorer already shows it training.
    resumed, started = runs.resume_config(run_dir, {"steps": 10}), []
    runs.train_run(resumed, data_dir=data_dir, show_progress=False, resume=run_dir, on_start=lambda where, step:
                   started.append((where, step, client.get("/api/runs/dcgan-fashion-mnist/training").json()["status"])))
    assert started == [(run_dir, 8, "training")]
    assert client.get("/api/runs/dcgan-fashion-mnist/training").json()["step"] == 10
    assert not np.array_equal(before, pixels(client.get(url)))  # the newer checkpoint, loaded


def test_serve_command_errors_are_one_line(tmp_path, capsys):
    assert cli.main(["serve", str(tmp_path / "missing")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert cli.main(["serve", str(tmp_path), "--port", "70000"]) == 2
    assert "invalid port '70000'" in capsys.readouterr().err


def test_a_taken_port_is_one_line(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UserError, match=f"cannot listen on 127.0.0.1:{port}"):
            serve.check_port_free("127.0.0.1", port)


def test_the_core_checks_counts_without_the_web_layer(served):
    root, _ = served
    catalog = explorer.Catalog(root)
    with pytest.raises(explorer.BadRequest, match="n must be 1..64"):
        catalog.grid("cgan-mnist", 0, 65, None, None)
    with pytest.raises(explorer.BadRequest, match="steps must be 2..64"):
        catalog.walk("cgan-mnist", "0", "0", 1, None, None)


def test_shift_and_latent_parsing():
    assert explorer.parse_vector(None, "shift", 8, 4.0) is None
    assert explorer.parse_vector("1, -2.5", "shift", 8, 4.0).tolist() == [1.0, -2.5]
    with pytest.raises(explorer.BadRequest, match="comma-separated numbers"):
        explorer.parse_vector("1;2", "shift", 8, 4.0)
    assert json.dumps(explorer.parse_latent("0,1", "z", 2).tolist()) == "[0.0, 1.0]"


def test_the_least_recently_used_model_leaves_memory_first(served, monkeypatch):
    root, _ = served
    monkeypatch.setattr(explorer, "MAX_LOADED", 1)
    catalog = explorer.Catalog(root)
    first = catalog.load("cgan-mnist")
    assert catalog.load("cgan-mnist") is first  # kept: loaded and compiled once
    catalog.load("dcgan-fashion-mnist")
    assert catalog.load("cgan-mnist") is not first  # it was dropped for the other run, so read again
