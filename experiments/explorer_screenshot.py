"""The README's picture of `gan_lab serve`: the explorer in headless chromium with cgan on MNIST (pane A)
and on Fashion-MNIST (pane B) on the same noise, a style held as every class, a walk between two samples.

    python experiments/compare_models.py          # the study whose runs are shown (or any runs directory)
    python experiments/explorer_screenshot.py     # writes samples/explorer.png

Needs the test extra (selenium) and Debian's chromium + chromium-driver.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "experiments" / "out" / "compare" / "e1-w0.5-sNone-ev10000x2"
OUT = ROOT / "samples" / "explorer.png"
VIEW = "?a=cgan-mnist-seed0&b=cgan-fashion-mnist-seed0&seed=7&n=36&pick=4&pick2=11"
SHOWN = ("grid-a", "grid-b", "wardrobe-a", "wardrobe-b", "walk-strip-a", "walk-strip-b")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs-dir", default=str(STUDY))
    parser.add_argument("--view", default=VIEW, help="the page's address after the host (its state)")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    if not Path(args.runs_dir).is_dir():
        sys.exit(f"no runs in {args.runs_dir}: run `python experiments/compare_models.py` first, or pass --runs-dir")

    server = subprocess.Popen([sys.executable, "-m", "gan_lab", "serve", args.runs_dir, "--port", str(args.port)],
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1500,1060",
                 "--hide-scrollbars"):
        options.add_argument(flag)
    driver = None
    try:
        print(server.stdout.readline().strip())
        time.sleep(2)
        driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(shutil.which("chromedriver")))
        driver.get(f"http://127.0.0.1:{args.port}/{args.view}")
        WebDriverWait(driver, 120).until(
            lambda d: all(d.find_element(By.ID, name).get_attribute("data-loaded") for name in SHOWN))
        time.sleep(1.0)  # a few frames of the walk's animation
        Path(args.out).write_bytes(driver.get_screenshot_as_png())
        print(f"wrote {args.out}")
    finally:
        if driver is not None:
            driver.quit()
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
