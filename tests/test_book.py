"""Build the book (smoke profile) and read it as a person would: pages, figures, glued numbers, links."""
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from html import unescape
from pathlib import Path

import pytest
import yaml

from moviegpt import report
from pathlib import Path as _Path

PROJECT_ROOT = _Path(__file__).resolve().parents[1]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("book")
    env = dict(os.environ, MOVIEGPT_PROFILE="smoke")
    jb = Path(sys.executable).parent / "jupyter-book"
    r = subprocess.run([str(jb), "build", str(PROJECT_ROOT), "--path-output", str(out), "-W", "-n", "--keep-going"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return out / "_build" / "html"


def chapters() -> list[str]:
    toc = yaml.safe_load((PROJECT_ROOT / "_toc.yml").read_text())
    return [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]


def text_of(page: Path) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", page.read_text())))


def test_every_chapter_page_and_figure_exists(site):
    expected_figures = {"book/dataset": 3, "book/methodology": 1, "book/results": 4, "book/performance": 2}
    for chapter in chapters():
        page = site / f"{chapter}.html"
        assert page.exists(), chapter
        images = re.findall(r'<img[^>]+src="([^"]+\.png)"', page.read_text())
        assert len(images) >= expected_figures.get(chapter, 0), chapter
        for src in images:
            img = (page.parent / src).resolve()
            assert img.exists() and img.stat().st_size > 1000, src
        assert "Traceback" not in page.read_text() and "{glue" not in page.read_text(), chapter


def test_performance_chapter_shows_the_committed_benchmarks(site):
    facts = report.performance_facts(report.benchmarks())
    page = text_of(site / "book/performance.html")
    assert facts["bench_cpu"] in page  # every figure is labelled with the hardware it ran on
    assert f"{facts['ours_useful']:,.0f} useful tokens per second" in page and f"{facts['ours_x']:.2f} times" in page
    assert facts["target_note"] in page and facts["gpt2_note"] in page  # whether 3x was met is computed, not typed
    assert f"{facts['prep_rows']:,}" in page


def test_glued_headline_numbers_match_the_run(site, monkeypatch):
    monkeypatch.setenv("MOVIEGPT_PROFILE", "smoke")  # the profile the site was built with
    summary = json.loads((report.book_run().dir / "summary.json").read_text())
    intro = text_of(site / f"{chapters()[0]}.html")
    before, after = f"{summary['base']['perplexity']:.2f}", f"{summary['final']['perplexity']:.2f}"
    assert f"went from {before} before fine-tuning to {after} after" in intro
    results = text_of(site / "book" / "results.html")
    assert f"from {before} to {after}" in results


@pytest.fixture(scope="module")
def server(site):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_site_in_a_real_browser(server):
    if not CHROMIUM:
        if os.environ.get("MOVIEGPT_REQUIRE_BROWSER"):
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium); the browser check did not run")
    from playwright.sync_api import sync_playwright

    shots = PROJECT_ROOT / "_build" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        links = set()
        for chapter in chapters():
            assert page.goto(f"{server}/{chapter}.html").status == 200
            page.wait_for_load_state("load")
            broken = page.eval_on_selector_all("img", "els => els.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
            assert broken == [], (chapter, broken)
            hrefs = page.eval_on_selector_all("a[href]", "els => els.map(a => a.href)")
            links |= {h.split("#")[0] for h in hrefs if h.startswith(server)}
            if chapter.endswith("results"):
                page.screenshot(path=str(shots / "results.png"), full_page=True)
        for link in sorted(links):
            assert page.request.get(link).status == 200, link
        browser.close()
    assert (shots / "results.png").stat().st_size > 10_000
