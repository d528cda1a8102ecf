"""The demonstration page, driven in a real (headless) browser, and its input bounds."""

import json
import os
import shutil
import threading
import urllib.error
import urllib.request

import pytest

from moviegpt import demo

from conftest import CHROMIUM_ARGS

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def server(smoke_run):
    srv = demo.make_server(str(smoke_run / "model"), "127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def post(url, body: bytes):
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_inputs_are_bounded(server):
    status, out = post(f"{server}/api/generate", json.dumps({"mode": "title", "title": "Heat", "num": 50}).encode())
    assert status == 400 and "num=50 must be at most" in out["error"]
    status, out = post(
        f"{server}/api/generate", json.dumps({"mode": "title", "title": "Heat", "max_new_tokens": 10_000}).encode()
    )
    assert status == 400 and "max_new_tokens" in out["error"]
    status, out = post(
        f"{server}/api/generate",
        json.dumps({"mode": "title", "title": "Heat", "num": demo.LIMITS["num"], "max_new_tokens": 12}).encode(),
    )
    assert status == 200 and len(out["results"]) == demo.LIMITS["num"]
    assert all(r["new_tokens"] <= 12 for r in out["results"]) and out["sampling"]["max_new_tokens"] == 12
    status, out = post(f"{server}/api/generate", b"x" * (demo.LIMITS["body_bytes"] + 1))
    assert status == 413
    status, out = post(f"{server}/api/generate", json.dumps({"mode": "title", "title": ""}).encode())
    assert status == 400 and "needs a title" in out["error"]
    status, out = post(f"{server}/api/recommend", b"[1, 2]")
    assert status == 400


def test_page_in_a_real_browser(server):
    if not CHROMIUM:
        if os.environ.get("MOVIEGPT_REQUIRE_BROWSER"):
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium); the browser check did not run")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
        )
        page = browser.new_page()
        page.goto(server + "/")
        page.fill("#title", "<b>Heat</b>")  # markup in the input must come back as text, never as HTML
        page.click("#generate")
        page.wait_for_selector(".gen", timeout=60_000)
        gens = page.locator(".gen").all_inner_texts()
        assert len(gens) == 2 and all(g.startswith("<b>Heat</b>") for g in gens)
        assert page.locator("#results b").count() == 0
        page.fill("#title", "a lonely robot falls in love")
        page.click("#recommend")
        page.wait_for_selector("table", timeout=60_000)
        assert "not a film in this run's data" in page.inner_text("#note")
        assert page.locator("table tr").count() == 1 + 5
        browser.close()
