"""gan_lab serve end to end: the real command, the real page, in a real headless browser (chromium).

Skipped, with the reason, only where no browser is installed; .ci/run installs Debian's chromium and
chromium-driver, so CI runs it.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from gan_lab import runs
from tests.helpers import TINY_SUBSET, tiny_config

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (BROWSER and DRIVER), reason="no chromium and chromedriver on PATH: "
                                "apt-get install chromium chromium-driver (as .ci/run does)")
WAIT = 60  # seconds for the page to show a picture (the first request compiles the run's decoder)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory, data_dir):
    """`python -m gan_lab serve RUNS --port P` over a cgan trained a few steps on real MNIST."""
    root = tmp_path_factory.mktemp("runs")
    runs.train_run(tiny_config("cgan", dataset="mnist", steps=4, subset=TINY_SUBSET), out=root / "cgan-mnist",
                   data_dir=data_dir, show_progress=False)
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "gan_lab", "serve", str(root), "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        banner = process.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in banner, banner
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + WAIT
        while True:  # the banner comes just before uvicorn listens
            try:
                urllib.request.urlopen(base + "/api/runs", timeout=5).read()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    yield driver
    driver.quit()


def loaded_picture(driver, element_id: str, previous: str | None = None, containing: str = "") -> str:
    """Wait until the <img> has loaded a picture other than `previous` whose URL contains `containing`;
    returns its URL."""
    def ready(d):
        src = d.find_element(By.ID, element_id).get_attribute("data-loaded")
        return src if src and src != previous and containing in src else False

    return WebDriverWait(driver, WAIT).until(ready)


def picture_pixels(driver, element_id: str) -> bytes:
    """The decoded pixels of an <img>, read back through a canvas."""
    return driver.execute_script("""
        const img = document.getElementById(arguments[0]);
        const canvas = document.createElement('canvas');
        canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
        const context = canvas.getContext('2d');
        context.drawImage(img, 0, 0);
        return Array.from(context.getImageData(0, 0, canvas.width, canvas.height).data).join(',');
    """, element_id)


def test_the_page_changes_the_picture_with_class_and_slider_and_keeps_the_view_in_its_address(server, browser):
    browser.get(server + "/?a=cgan-mnist&seed=3&n=16")
    first_url = loaded_picture(browser, "grid-a")
    first = picture_pixels(browser, "grid-a")
    assert "seed=3" in first_url and "n=16" in first_url
    assert "cgan on mnist" in browser.find_element(By.ID, "pane-a").text

    Select(browser.find_element(By.ID, "class")).select_by_value("7")  # a class, as a user picks it
    class_url = loaded_picture(browser, "grid-a", first_url)
    assert "class=7" in class_url
    with_class = picture_pixels(browser, "grid-a")
    assert with_class != first

    slider = browser.find_element(By.ID, "slider-0")
    slider.click()
    for _ in range(10):
        slider.send_keys(Keys.ARROW_RIGHT)  # a real input event per key
    # The picture of the last key (z[0] moved by 1.0), not of one on the way: a step of 0.1 can leave
    # every pixel of this barely trained model the same after rounding to 8 bits.
    slider_url = loaded_picture(browser, "grid-a", class_url, containing="shift=1%2C0%2C")
    assert picture_pixels(browser, "grid-a") != with_class

    # Two clicks on samples: the first is held as a style (the wardrobe), the second starts a walk.
    grid = browser.find_element(By.ID, "grid-a")
    for x, y in ((10, 10), (grid.size["width"] - 10, grid.size["height"] - 10)):
        webdriver.ActionChains(browser).move_to_element_with_offset(grid, x - grid.size["width"] // 2,
                                                                    y - grid.size["height"] // 2).click().perform()
    loaded_picture(browser, "wardrobe-a")
    assert "z0=" in loaded_picture(browser, "walk-strip-a")

    # The address holds the view: reopened, it draws the same picture.
    address = browser.current_url
    assert "class=7" in address and "shift=" in address and "pick=15" in address and "pick2=0" in address
    browser.get(address)
    assert loaded_picture(browser, "grid-a") == slider_url
