"""moviegpt.cli.demo: the demonstration page in a real (headless) browser, its input bounds and hostile requests."""

import http.client
import json
import os
import shutil
import socket
import string
import time
import urllib.error
import urllib.request

import pytest
from conftest import CHROMIUM_ARGS
from hypothesis import example, given, settings
from hypothesis import strategies as st

from moviegpt import UserError
from moviegpt.cli import demo

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def url(server):
    """The address of conftest's demo server (`server` is its port)."""
    return f"http://127.0.0.1:{server}"


def post(url, body: bytes):
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_inputs_are_bounded(url):
    status, out = post(f"{url}/api/generate", json.dumps({"mode": "title", "title": "Heat", "num": 50}).encode())
    assert status == 400 and "num=50 must be at most" in out["error"]
    status, out = post(
        f"{url}/api/generate", json.dumps({"mode": "title", "title": "Heat", "max_new_tokens": 10_000}).encode()
    )
    assert status == 400 and "max_new_tokens" in out["error"]
    status, out = post(
        f"{url}/api/generate",
        json.dumps({"mode": "title", "title": "Heat", "num": demo.LIMITS["num"], "max_new_tokens": 12}).encode(),
    )
    assert status == 200 and len(out["results"]) == demo.LIMITS["num"]
    assert all(r["new_tokens"] <= 12 for r in out["results"]) and out["sampling"]["max_new_tokens"] == 12
    status, out = post(f"{url}/api/generate", b"x" * (demo.LIMITS["body_bytes"] + 1))
    assert status == 413
    status, out = post(f"{url}/api/generate", json.dumps({"mode": "title", "title": ""}).encode())
    assert status == 400 and "needs a title" in out["error"]
    status, out = post(f"{url}/api/recommend", b"[1, 2]")
    assert status == 400


def test_page_in_a_real_browser(url):
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
        page.goto(url + "/")
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


# ------------------------------------------------------------------ bad requests


def request(port, method, path, body=b"", headers=None) -> tuple[int, dict]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for k, v in {"Host": f"127.0.0.1:{port}", **(headers or {})}.items():
        if v is not None:
            c.putheader(k, v)
    c.endheaders(body)
    r = c.getresponse()
    return r.status, json.loads(r.read() or b"{}")


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    "headers, body, status, fragment",
    [
        ({**JSON, "Content-Length": "-1"}, b"{}", 411, "Content-Length"),
        ({**JSON, "Content-Length": "abc"}, b"{}", 411, "Content-Length"),
        (JSON, b"", 411, "Content-Length"),  # no Content-Length header at all
        ({**JSON, "Content-Length": str(400 * 2**20)}, b"{}", 413, "too large"),  # never read whatever it claims
        ({**JSON, "Host": "evil.example"}, b"{}", 421, "loopback"),  # DNS rebinding
        ({**JSON, "Origin": "http://evil.example"}, b"{}", 403, "cross-origin"),  # CSRF from another page
        ({"Content-Type": "text/plain"}, b"{}", 415, "JSON"),  # a form post from any page
        (JSON, b'{"mode": "title", "title": "Heat", "max_new_tokens": 1e309}', 400, "finite"),
        (JSON, b'{"mode": "title", "title": "Heat", "num": Infinity}', 400, "not JSON"),
        (JSON, b'{"mode": "title", "title": "Heat", "temperature": -1}', 400, "temperature"),
        (JSON, b"[" * 4000 + b"]" * 4000, 400, "not valid JSON"),  # nesting deeper than the parser goes
    ],
)
def test_demo_answers_bad_requests_with_a_4xx(server, headers, body, status, fragment):
    length = headers.get("Content-Length", str(len(body)) if body else None)
    got, out = request(server, "POST", "/api/generate", body, {**headers, "Content-Length": length})
    assert got == status and fragment in out["error"], out
    assert request(server, "GET", "/api/info")[0] == 200  # and keeps serving


def first_answer(s: socket.socket) -> bytes:
    s.settimeout(demo.LIMITS["timeout_s"] + 20)
    got = b""
    while chunk := s.recv(4096):
        got += chunk
    return got


@pytest.mark.parametrize(
    "start, then",
    [
        (b"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\n", b""),  # headers, then nothing
        (
            b"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"mode"',
            b"",
        ),  # a body shorter than its Content-Length
        (
            b"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 2\r\nExpect: 100-continue\r\n\r\n",
            b"",
        ),  # asked to continue, sends no body
        (b"P", b"OST /api/generate HTTP/1.1\r\n"),  # one byte a second: every read is quick, the request is not
    ],
)
def test_a_request_that_does_not_arrive_in_time_gets_408_and_the_server_goes_on(server, start, then):
    s = socket.create_connection(("127.0.0.1", server))
    t = time.time()
    s.sendall(start)
    for byte in then:
        time.sleep(1)
        try:
            s.sendall(bytes([byte]))
        except OSError:  # closed by the server: the deadline passed
            break
    got = first_answer(s)
    assert b"408 Request Timeout" in got and time.time() - t < demo.LIMITS["timeout_s"] + 15, got[:200]
    assert request(server, "GET", "/api/info")[0] == 200


def test_a_burst_of_connections_is_answered_every_one(server):
    import concurrent.futures

    def one(_):
        try:
            return request(server, "GET", "/api/info")[0]
        except OSError as e:
            return type(e).__name__

    with concurrent.futures.ThreadPoolExecutor(max_workers=100) as pool:
        got = list(pool.map(one, range(200)))
    assert set(got) <= {200, 503}, sorted({str(g) for g in got})
    assert got.count(200) >= demo.LIMITS["workers"]


def test_demo_binds_beyond_loopback_only_when_asked(smoke_run, capfd):
    with pytest.raises(UserError, match="not a loopback address"):
        demo.make_server(str(smoke_run / "model"), "0.0.0.0", 0)
    srv = demo.make_server(str(smoke_run / "model"), "0.0.0.0", 0, allow_remote=True)
    srv.server_close()
    assert "warning: the demo is served on 0.0.0.0" in capfd.readouterr().err


# ------------------------------------------------------------------ raw HTTP, generated


def raw(port: int, request: bytes, timeout: float = 30) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


HEADER_VALUE = st.one_of(
    st.sampled_from(
        [
            "-1",
            "0",
            "abc",
            "1e309",
            "99999999999",
            "",
            " 5",
            "application/json",
            "text/plain",
            "evil.example",
            "127.0.0.1",
            "localhost:1",
            "http://evil.example",
            "null",
            "chunked",
        ]
    ),
    st.text(alphabet=string.printable[:94], max_size=20),
)
BODY = st.one_of(
    st.binary(max_size=64),
    st.sampled_from(
        [
            b'{"mode": "title", "title": "Heat", "max_new_tokens": 1e309}',
            b'{"mode": "title", "title": "Heat", "num": Infinity}',
            b'{"mode": "concept", "num": -1}',
            b'{"query": "Heat", "k": NaN}',
            b"[1, 2]",
            b'"x"',
            b'{"mode": "title", "title": 7}',
            b'{"mode": "title", "title": "Heat", "temperature": 0, "max_new_tokens": 2}',
            b'{"query": "\\u001b[2J", "k": 2}',
        ]
    ),
)


@settings(max_examples=100, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "OPTIONS", "X" * 40]),
    path=st.sampled_from(["/", "/api/info", "/api/generate", "/api/recommend", "/../etc/passwd", "/%00", "*"]),
    headers=st.dictionaries(
        st.sampled_from(["Host", "Content-Length", "Content-Type", "Origin", "Transfer-Encoding"]),
        HEADER_VALUE,
        max_size=5,
    ),
    body=BODY,
)
@example(
    method="POST",
    path="/api/generate",
    headers={"Host": "127.0.0.1", "Content-Length": "-1", "Content-Type": "application/json"},
    body=b"{}",
)
@example(method="PUT", path="/", headers={}, body=b"")  # found by hypothesis: http.server answered 501
def test_every_request_gets_an_answer(server, method, path, headers, body):
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items() if "\r" not in v and "\n" not in v)
    response = raw(server, f"{method} {path} HTTP/1.1\r\n{head}\r\n".encode() + body)
    assert response.startswith(b"HTTP/1.") and int(response[9:12]) in range(200, 500), response[:200]
    ok = raw(server, b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert ok.startswith(b"HTTP/1.0 200") or ok.startswith(b"HTTP/1.1 200")  # still serving
