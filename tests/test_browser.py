"""A real browser (Debian's headless chromium) fills the form of the running server and reads the text."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

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
def server(tmp_path_factory, tiny_model_dir, mini_gpt_workdir):
    """Step 5's server over a workdir where steps 3 and 6 have run (tiny models), the base model served beside."""
    from aurore.training import plots

    workdir = tmp_path_factory.mktemp("browser")
    config = Config(workdir=workdir)
    shutil.copytree(tiny_model_dir, config.finetuned_dir)
    shutil.copytree(Config(workdir=mini_gpt_workdir).mini_gpt_dir, config.mini_gpt_dir)
    (config.finetuned_dir / "metrics.json").write_text(json.dumps(
        {"perplexity_before": 812.5, "perplexity_after": 96.25, "settings": {"profile": "laptop"}}))
    (config.finetuned_dir / "README.md").write_text(  # a model card with a long path, as step 3 writes on a laptop
        "---\nlanguage: fr\n---\n# gpt2-george-sand\n\nFine-tuned from `/home/participant/atelier/aurore/aurore/models/"
        "standin-with-a-long-name-that-does-not-break` on George Sand.\n", encoding="utf-8")
    steps = [{"step": s, "loss": 6 - s / 10} for s in range(1, 30)]
    plots.plot_losses(steps, [{"step": 29, "val_loss": 3.5}], config.finetuned_dir / "loss.png")
    port = free_port()
    process = subprocess.Popen([sys.executable, "aurore/5_flask_solution.py", "--port", str(port)], cwd=REPO,
                               env={**os.environ, "AURORE_WORKDIR": str(workdir), "AURORE_BASE_MODEL": str(tiny_model_dir)},
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


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    OUTPUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield browser
        browser.close()


@pytest.fixture
def phone(browser):
    page = browser.new_page(viewport={"width": 390, "height": 844})
    yield page
    page.close()


def accessible(page, name: str) -> None:
    """The page passes the accessibility checks of tests/a11y.js (and axe-core's, when AURORE_AXE names its
    axe.min.js); a screenshot is kept under test-output/browser/."""
    page.screenshot(path=str(OUTPUT / f"{name}.png"), full_page=True)
    # Nothing wider than the screen (a phone would scroll sideways): long paths wrap, labels flow as sentences.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), f"{name}: wider than the screen"
    problems = page.evaluate((Path(__file__).parent / "a11y.js").read_text(encoding="utf-8"))
    assert problems == [], problems
    axe = os.environ.get("AURORE_AXE")
    if axe:
        page.add_script_tag(path=axe)
        result = page.evaluate("axe.run(document, {runOnly: ['wcag2a', 'wcag2aa']})")
        assert [v["id"] for v in result["violations"]] == [], result["violations"]


def test_a_browser_fills_the_form_and_sees_the_texts_grow(server, phone):
    page = phone
    page.goto(server + "/generate")
    assert page.locator("html").get_attribute("lang") == "fr"
    assert not page.is_visible("[data-stop]")  # nothing to stop yet
    accessible(page, "generate-empty")
    page.fill("#prompt", "La rivière")
    page.fill("input[name=max_new_tokens]", "40")
    page.fill("input[name=num_texts]", "2")
    page.click("button[type=submit]")  # by default, the form goes through the participant's route /generate
    page.wait_for_selector("#prompt-shown", timeout=60_000)
    assert page.locator("article.text").count() == 2 and page.input_value("#prompt") == "La rivière"
    page.check("input[name=live]")  # "en direct": the package's streaming route
    # Every version of the first text the page displays, as the stream updates it.
    # (A record's added text node keeps the text of that update, even when the observer runs after several.)
    page.evaluate("""window.versions = [];
        new MutationObserver((records) => records.forEach((r) => r.target === document.querySelector('article.text')
            && window.versions.push([...r.addedNodes].map((n) => n.textContent).join('')))).observe(
            document.getElementById('results'), {childList: true, subtree: true})""")
    page.click("button[type=submit]")
    page.wait_for_function("document.getElementById('results').dataset.done", timeout=60_000)
    texts = page.locator("article.text").all_inner_texts()
    assert len(texts) == 2 and all(text.startswith("La rivière") for text in texts)
    versions = page.evaluate("window.versions")
    shorter = {len(v) for v in versions if len(v) < len(page.locator("article.text").first.text_content())}
    assert len(shorter) >= 2, versions  # partial texts were on the page before the end
    assert page.inner_text("#seed-used").isdigit()
    assert page.input_value("input[name=max_new_tokens]") == "40"  # the settings stay in the form
    assert "GPT-2 affiné sur George Sand" in page.inner_text("footer")
    page.wait_for_function("document.querySelector('[data-stop]').hidden")
    accessible(page, "generate")


def test_stopping_a_generation_says_so_calmly(server, phone):
    page = phone
    page.route("**/api/generate/stream", lambda route: None)  # the server never answers: the texts are "being written"
    page.goto(server + "/generate")
    page.fill("#prompt", "La rivière")
    page.check("input[name=live]")
    page.click("button[type=submit]")
    page.click("[data-stop]")
    page.wait_for_selector("#status", state="visible")
    assert "à votre demande" in page.inner_text("#status") and not page.is_visible("#error")
    assert not page.is_visible("[data-stop]")


def test_compare_says_a_form_error_once(server, phone):
    page = phone
    page.goto(server + "/comparer")
    page.evaluate("document.querySelector('form[data-stream=compare]').noValidate = true")  # as curl would send it
    page.fill("#prompt", "Germain")
    page.fill("input[name=temperature]", "0")
    page.click("button[type=submit]")
    page.wait_for_selector("#error", state="visible", timeout=30_000)
    assert "température" in page.inner_text("#error")
    assert not page.is_visible("#columns") and not page.is_visible("#compare-seed")


def test_the_footer_names_the_model_chosen_in_the_select(server, phone):
    page = phone
    page.goto(server + "/generate")
    options = page.locator("#model option")
    assert options.count() >= 2  # fine-tuned, base and mini-GPT are served
    other = next(i for i in range(options.count()) if options.nth(i).get_attribute("value") != page.input_value("#model"))
    page.select_option("#model", options.nth(other).get_attribute("value"))
    assert page.inner_text("#model-label") == options.nth(other).inner_text()


def test_compare_shows_one_column_per_model(server, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})  # a desktop: columns side by side
    page.goto(server + "/comparer")
    page.fill("#prompt", "Germain")
    page.fill("input[name=max_new_tokens]", "10")
    page.click("button[type=submit]")
    page.wait_for_function("[...document.querySelectorAll('.column .text')].every(p => p.textContent.startsWith('Germain'))",
                           timeout=60_000)
    columns = page.locator("article.column")
    assert columns.count() == 3
    headings = columns.locator("h2").all_inner_texts()
    assert any("affiné" in h for h in headings) and any("de base" in h for h in headings)
    assert any("mini-GPT" in h for h in headings)
    # The columns' tops in one snapshot: the page may still move (a status line above them) between two reads.
    tops = "[...document.querySelectorAll('article.column')].map(c => c.getBoundingClientRect().top)"
    assert len(set(page.evaluate(tops))) == 1  # side by side
    accessible(page, "compare")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: stacked
    first, second, third = page.evaluate(tops)
    assert first < second < third
    page.screenshot(path=str(OUTPUT / "compare-phone.png"), full_page=True)
    page.close()


def test_the_why_chart_follows_the_sliders_and_a_click_continues_the_prompt(server, phone):
    page = phone
    page.goto(server + "/pourquoi")
    page.fill("#prompt", "La rivière")
    page.click("button[type=submit]")
    page.wait_for_selector("#tokens li", timeout=30_000)
    assert page.locator("#tokens li").count() == 15
    page.locator("#top_k").fill("3")  # a range input: fill sets its value and fires input
    page.wait_for_function("document.querySelectorAll('#tokens li.kept').length === 3", timeout=10_000)
    assert page.locator("#tokens li.removed").count() == 12
    shown = page.locator("#tokens li.removed .numbers").first.inner_text()
    assert shown.endswith("→ 0\u00a0% (retiré)") and "." not in shown, shown  # the script writes what the server does
    accessible(page, "pourquoi")
    token = page.locator("#tokens li.kept button").first
    before = page.input_value("#prompt")
    token.click()
    page.wait_for_function(f"document.getElementById('prompt').value.length > {len(before)}")
    page.wait_for_function("document.getElementById('chart-prompt').textContent.startsWith('La rivière') && "
                           "document.getElementById('chart-prompt').textContent !== 'La rivière'", timeout=10_000)


def test_my_model_shows_what_step_3_measured_with_the_curve(server, phone):
    page = phone
    page.goto(server + "/mon-modele")
    assert "812,50" in page.inner_text("#perplexity") and "96,25" in page.inner_text("#perplexity")
    page.wait_for_function("document.getElementById('loss').naturalWidth > 100")
    accessible(page, "mon-modele")
