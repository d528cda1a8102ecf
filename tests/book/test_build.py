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
from conftest import CHROMIUM_ARGS, PROJECT_ROOT

from moviegpt.book import applications, arms, records, results

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.slow


HOSTILE = 'evil <img src=x onerror="alert(1)"><script>alert(2)</script>'  # a reference folder's name


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A copy of the project (its tracked files) sharing the real runs/, with two reference runs planted: one
    damaged (its reference.json lacks the machine), one hostile (markup in its folder name and its records)."""
    from moviegpt.core import reference

    root = tmp_path_factory.mktemp("project")
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=PROJECT_ROOT, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        src, dst = PROJECT_ROOT / name, root / name
        if src.is_symlink() or not src.exists():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    shutil.copytree(PROJECT_ROOT / "data", root / "data", dirs_exist_ok=True)  # the study and the bundled films
    (PROJECT_ROOT / "runs").mkdir(exist_ok=True)
    (root / "runs").symlink_to(PROJECT_ROOT / "runs")
    env = dict(os.environ, MOVIEGPT_PROFILE="smoke")
    book = subprocess.run(
        [sys.executable, "-m", "moviegpt.cli", "book"], cwd=root, env=env, capture_output=True, text=True
    )
    assert book.returncode == 0, book.stderr[-3000:]
    names = json.loads((root / "runs" / "book-smoke.json").read_text())["runs"]
    main = root / "runs" / names[arms.MAIN]
    hostile = reference.export(main, root / reference.FOLDER / HOSTILE)
    made = json.loads((hostile / "reference.json").read_text())
    (hostile / "reference.json").write_text(json.dumps(made | {"machine": "<script>alert(3)</script> CPU"}))
    damaged = reference.export(main, root / reference.FOLDER / "damaged")
    made = json.loads((damaged / "reference.json").read_text())
    made.pop("machine")
    (damaged / "reference.json").write_text(json.dumps(made))
    return root


@pytest.fixture(scope="module")
def site(project):
    env = dict(os.environ, MOVIEGPT_PROFILE="smoke")
    jb = Path(sys.executable).parent / "jupyter-book"
    r = subprocess.run(
        [str(jb), "build", str(project), "-W", "-n", "--keep-going"], capture_output=True, text=True, env=env
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "left out the reference run damaged" in r.stderr  # said in the terminal, one line
    return project / "_build" / "html"


def test_a_damaged_and_a_hostile_reference_leave_the_build_standing_and_inert(site):
    page = (site / "book" / "results.html").read_text()
    assert "<script>alert" not in page and "<img src=x" not in page and 'onerror="alert' not in page
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in page or "&lt;script&gt;alert(2)" in page  # shown, as text
    words = text_of(site / "book" / "results.html")
    assert "Left out: damaged:" in words and "has no machine" in words


def chapters() -> list[str]:
    toc = yaml.safe_load((PROJECT_ROOT / "_toc.yml").read_text())
    return [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]


def text_of(page: Path) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", page.read_text())))


def test_every_chapter_page_and_figure_exists(site):
    expected_figures = {
        "book/dataset": 3,
        "book/methodology": 1,
        "book/results": 5,
        "book/performance": 1,
        "book/implementation": 1,
    }
    for chapter in chapters():
        page = site / f"{chapter}.html"
        assert page.exists(), chapter
        html = page.read_text()
        images = re.findall(r'<img[^>]+src="([^"]+\.png)"', html)
        assert len(images) >= expected_figures.get(chapter, 0), chapter
        for src in images:
            img = (page.parent / src).resolve()
            assert img.exists() and img.stat().st_size > 1000, src
        assert "Traceback" not in html and "{glue" not in html and "{numref" not in html, chapter
        assert "%|" not in text_of(page) and "it/s]" not in text_of(page), chapter  # no progress bars in pages


def test_figures_are_captioned_numbered_and_referenced(site):
    figures = 0
    for chapter in chapters():
        html = (site / f"{chapter}.html").read_text()
        captions = re.findall(r'<span class="caption-number">Fig\. ([\d.]+) </span>', html)
        refs = re.findall(r'<span class="std std-numref">Figure ([\d.]+)</span>', html)
        assert set(refs) <= set(captions), chapter  # every reference points at a figure on its page
        assert len(re.findall(r'<figure[^>]*id="fig-', html)) == len(captions), chapter  # named and captioned
        figures += len(captions)
    assert figures >= 6


def test_chapters_download_as_notebooks(site):
    page = (site / "book" / "results.html").read_text()
    assert "_sources/book/results.ipynb" in page
    nb = json.loads((site / "_sources" / "book" / "results.ipynb").read_text())
    assert any(o.get("output_type") for c in nb["cells"] for o in c.get("outputs", []))  # executed, with outputs


def test_performance_chapter_labels_every_table_with_its_machine(site):
    from moviegpt.book import performance as perf

    res = perf.results(PROJECT_ROOT)
    page = text_of(site / "book/performance.html")
    for name in ("train_throughput", "train_throughput_avx2", "train_throughput_gpu"):
        n = perf.throughput_numbers(res[name])
        assert n["machine"] in page and f"{n['ours_useful']:,.0f}" in page, name
    assert f"{perf.data_prep_numbers(res['data_prep'])['prep_rows']:,}" in page
    assert (
        perf.MEASURED_RULE in page and perf.SPEC_RULE in page and "not measured here" in page
    )  # MFU rules, references
    for row in res["external_references"]["rows"]:
        assert row["source"] in page and f"{row['tokens_per_s_per_gpu']:,}" in page


def test_the_first_screen_says_what_ran_and_its_interval(site, monkeypatch):
    monkeypatch.setenv("MOVIEGPT_PROFILE", "smoke")  # the profile the site was built with
    monkeypatch.chdir(PROJECT_ROOT)
    run = arms.main_run()
    from moviegpt.book import intro

    h, iv = intro.facts(run), records.held_out(run)
    first = text_of(site / f"{chapters()[0]}.html").split("What ran in this build", 1)[1][:1200]
    for fact in (
        h["model"],
        h["train_pool"],
        f"{h['steps']} optimizer steps",
        h["machine"],
        f"went from {iv['before'].value:,.2f} (95% CI",
    ):
        assert fact in first, fact
    assert "(95% CI " in first
    page = text_of(site / "book" / "results.html").replace(" ,", ",")
    assert (
        f"took the perplexity from {iv['before'].value:,.2f} (95% CI" in page
        and f"a ratio of {iv['ratio'].value:.2f}" in page
    )


def test_results_compare_the_three_recipes_on_the_same_films(site, monkeypatch):
    monkeypatch.setenv("MOVIEGPT_PROFILE", "smoke")
    monkeypatch.chdir(PROJECT_ROOT)
    runs = arms.runs()
    assert list(runs) == [arms.MAIN, arms.LORA, arms.ORIGINAL]
    f = results.equal_time_facts(runs, results.scores(runs))
    page = text_of(site / "book" / "results.html").replace(" ,", ",").replace("\u2019", "'")  # smart quotes
    for fact in (f["orig_gap_ci"], f["orig_gap_nats"], f["orig_eos_nats"], f["lora_gap_ci"]):
        assert fact in page, fact
    assert "none of them can be placed on the study's curves" in page  # a smoke build trains another model


def test_generated_text_is_shown_whole(site, monkeypatch):
    """Every generated overview in Results and Applications appears in full, newlines and all."""
    monkeypatch.setenv("MOVIEGPT_PROFILE", "smoke")
    monkeypatch.chdir(PROJECT_ROOT)
    run = arms.main_run()
    squash = lambda t: re.sub(r"\s+", " ", t).strip()
    page = text_of(site / "book" / "results.html")
    shown = [results.shown(e.generated[m]) for e in records.evaluation(run).examples[:4] for m in results.MODELS]
    assert all(squash(t) in page for t in shown) and max(len(t) for t in shown) > 50
    apps = text_of(site / "book" / "applications.html")
    made = applications.invented_titles(run).data["generated overview"].tolist()  # seeded: the page's texts again
    assert all(squash(t) in apps for t in made), made
    assert "…" not in apps.replace("[…]", "")  # nothing cut for display
    html = (site / "book" / "applications.html").read_text()
    assert "white-space: pre-wrap" in html


@pytest.fixture(scope="module")
def server(site):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


# Every table, figure, image and pre block of the article: its right edge within the article's column, or inside a box
# that scrolls sideways (overflow-x auto or scroll) with something to scroll.
OVERFLOW_JS = """() => {
  const col = document.querySelector("article.bd-article") || document.querySelector("main");
  const right = col.getBoundingClientRect().right + 1;
  const scrolls = el => {
    for (let e = el; e && e !== col; e = e.parentElement) {
      const o = getComputedStyle(e).overflowX;
      if ((o === "auto" || o === "scroll") && e.getBoundingClientRect().right <= right) return true;
    }
    return false;
  };
  return [...col.querySelectorAll("table, img, pre, figure, .cell_output")]
    .filter(el => el.getBoundingClientRect().right > right && !scrolls(el))
    .map(el => el.tagName + " " + (el.className || "") + " " + Math.round(el.getBoundingClientRect().right));
}"""


def test_site_in_a_real_browser(server):
    if not CHROMIUM:
        if os.environ.get("MOVIEGPT_REQUIRE_BROWSER"):
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium); the browser check did not run")
    from playwright.sync_api import sync_playwright

    shots = PROJECT_ROOT / "_build" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        links = set()
        for chapter in chapters():
            assert page.goto(f"{server}/{chapter}.html").status == 200
            page.wait_for_load_state("load")
            broken = page.eval_on_selector_all(
                "img", "els => els.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"
            )
            assert broken == [], (chapter, broken)
            wide = page.evaluate(OVERFLOW_JS)
            assert wide == [], (chapter, wide)  # nothing wider than its column at 1,280 px, unless it scrolls
            hrefs = page.eval_on_selector_all("a[href]", "els => els.map(a => a.href)")
            links |= {h.split("#")[0] for h in hrefs if h.startswith(server)}
            if chapter.endswith("results"):
                page.screenshot(path=str(shots / "results.png"), full_page=True)
        for link in sorted(links):
            assert page.request.get(link).status == 200, link
        browser.close()
    assert (shots / "results.png").stat().st_size > 10_000
