"""A real browser (Debian's headless chromium) fills the form of the running server and reads the text."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from aurore.config import Config
from conftest import REPO

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
OUTPUT = REPO / "test-output" / "browser"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model_dir):
    workdir = tmp_path_factory.mktemp("browser")
    shutil.copytree(tiny_model_dir, Config(workdir=workdir).finetuned_dir)
    port = free_port()
    process = subprocess.Popen([sys.executable, "aurore/5_flask_solution.py", "--port", str(port)], cwd=REPO,
                               env={**os.environ, "AURORE_WORKDIR": str(workdir)},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1)
            break
        except OSError:
            if process.poll() is not None:
                pytest.fail(f"the server stopped: {process.stdout.read()[-2000:]}")
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("the server did not start within 180 s")
    yield url
    process.terminate()
    process.wait(10)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_a_browser_fills_the_form_and_reads_the_generated_text(server):
    from playwright.sync_api import sync_playwright

    OUTPUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
        page.goto(server + "/generate")
        assert page.locator("html").get_attribute("lang") == "fr"
        page.fill("#prompt", "La rivière")
        page.fill("input[name=max_new_tokens]", "12")
        page.fill("input[name=num_texts]", "2")
        page.click("button[type=submit]")
        page.wait_for_selector("article.text", timeout=60_000)
        texts = page.locator("article.text").all_inner_texts()
        assert len(texts) == 2 and all(text.startswith("La rivière") for text in texts)
        assert page.input_value("input[name=max_new_tokens]") == "12"  # the settings stay in the form
        assert "GPT-2 affiné sur George Sand" in page.inner_text("footer")
        page.screenshot(path=str(OUTPUT / "generate.png"), full_page=True)
        page.click("text=Mon modèle")
        assert "pas encore été affiné" in page.inner_text("main")  # this workdir's model has no step-3 report
        page.screenshot(path=str(OUTPUT / "mon-modele.png"), full_page=True)
        browser.close()
    assert (OUTPUT / "generate.png").stat().st_size > 1000
