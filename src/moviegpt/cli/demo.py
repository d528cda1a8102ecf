"""`moviegpt demo`: a one-page local web app to try a trained model (the report's "demonstration interface").

Standard library only (http.server): one HTML page and two JSON endpoints, safe to leave running:
- it binds to loopback; any other address needs --allow-remote and prints a warning;
- it answers only requests whose Host is a loopback name (no DNS rebinding) and POSTs that are same-origin
  JSON (no cross-site form posts), and at most LIMITS["body_bytes"] bytes are ever read, whatever the headers say;
- every number is range- and finite-checked (moviegpt.eval.generate.Sampling, moviegpt.core.validate), every bad request
  gets a 4xx JSON answer, a slow client is cut off after LIMITS["timeout_s"], and generation runs one at a time.
Generated text reaches the page only through `textContent`, never as HTML.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from moviegpt.core import validate
from moviegpt.core.errors import UserError, first_line
from moviegpt.eval.generate import Sampling, attach, build_prompt, sample
from moviegpt.eval.recommend import for_model
from moviegpt.model.causal_lm import load_trained

LIMITS = {
    "chars": 500,
    "max_new_tokens": 120,
    "num": 3,
    "k": 10,
    "body_bytes": 8192,
    "timeout_s": 10,  # for the whole request (line, headers and body), not per read: a dribbling client gets 408
    "workers": 16,  # requests handled at once; one more is answered 503 at once instead of queueing a thread
    "backlog": 128,  # connections the kernel holds while the workers are busy (a burst is answered, not dropped)
}
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>moviegpt demo</title>
<style>
 body{font:16px/1.5 system-ui,sans-serif;max-width:50rem;margin:2rem auto;padding:0 1rem;color:#222}
 textarea{width:100%;font:inherit} button{font:inherit;margin:.3rem .3rem 0 0}
 .gen{border-left:3px solid #4C72B0;padding:.2rem .8rem;margin:.8rem 0;white-space:pre-wrap}
 #error{color:#b00} table{border-collapse:collapse} td,th{padding:.2rem .6rem;border-bottom:1px solid #ddd;text-align:left}
</style></head><body>
<h1>moviegpt demo</h1>
<p>Model: <code id="model"></code></p>
<label for="title">Film title</label>
<textarea id="title" rows="1" maxlength="{chars}" placeholder="e.g. The Lighthouse Keeper's Daughter"></textarea>
<label for="genre">Genre (when the model's template names one)</label>
<textarea id="genre" rows="1" maxlength="{chars}"></textarea>
<label for="text">Start of an overview (optional: the model completes it)</label>
<textarea id="text" rows="2" maxlength="{chars}"></textarea>
<div><button id="generate">Write overviews</button><button id="concept">Invent a film</button>
<button id="recommend">Recommend similar films</button></div>
<p id="error" role="alert"></p><div id="results"></div>
<script>
const $ = id => document.getElementById(id);
async function call(path, body) {
  $("error").textContent = ""; $("results").textContent = "Working…";
  const r = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
  const data = await r.json();
  $("results").textContent = "";
  if (!r.ok) { $("error").textContent = data.error; return null; }
  return data;
}
function show(items) {
  for (const g of items) {
    const d = document.createElement("div"); d.className = "gen";
    d.textContent = (g.title ? g.title + "\\n" : "") + g.overview + (g.ended_with_eos ? "" : " […]");
    $("results").appendChild(d);
  }
}
async function generate(mode) {
  const data = await call("/api/generate", {mode, title: $("title").value, text: $("text").value, genre: $("genre").value, num: 2});
  if (data) show(data.results);
}
$("generate").onclick = () => generate($("text").value.trim() ? "completion" : "title");
$("concept").onclick = () => generate("concept");
$("recommend").onclick = async () => {
  const data = await call("/api/recommend", {query: $("title").value || $("text").value, k: 5});
  if (!data) return;
  const note = document.createElement("p"); note.id = "note"; note.textContent = data.note; $("results").appendChild(note);
  const t = document.createElement("table");
  const head = t.createTHead().insertRow();
  for (const h of ["title", "year", "genres", "similarity"]) head.appendChild(document.createElement("th")).textContent = h;
  for (const r of data.results) {
    const tr = t.insertRow();
    for (const v of [r.title, r.year ?? "", r.genres, r.similarity.toFixed(3)]) tr.insertCell().textContent = v;
  }
  $("results").appendChild(t);
};
fetch("/api/info").then(r => r.json()).then(d => { $("model").textContent = d.model; });
</script></body></html>"""


class Demo:
    """The loaded model, its tokenizer and a recommender, behind a lock (one request at a time)."""

    def __init__(self, model_dir: str):
        self.model_dir = model_dir
        self.model, self.tok, self.settings = load_trained(model_dir)
        self.recommender = for_model(model_dir)
        self.lock = threading.Lock()

    def generate(self, req: dict) -> dict:
        mode = req.get("mode", "title")
        validate.need(mode in ("title", "concept", "completion"), "mode must be title, concept or completion")
        title, text = (validate.plain(req.get(k, ""), LIMITS["chars"]) for k in ("title", "text"))
        genre = validate.plain(req.get("genre", ""), LIMITS["chars"])
        num = validate.number("num", req.get("num", 1), integer=True, lo=1, hi=LIMITS["num"])
        how = Sampling(
            max_new_tokens=validate.number(
                "max_new_tokens", req.get("max_new_tokens", 80), integer=True, lo=1, hi=LIMITS["max_new_tokens"]
            ),
            seed=req.get("seed", 0),
            temperature=req.get("temperature", Sampling.temperature),
            top_p=req.get("top_p", Sampling.top_p),
            top_k=req.get("top_k", Sampling.top_k),
            repetition_penalty=req.get("repetition_penalty", 1.0),
            no_repeat_ngram_size=req.get("no_repeat_ngram_size", 0),
        )
        prompt = build_prompt(mode, self.settings["template"], title=title, text=text, fields={"genres": genre})
        with self.lock:
            out = sample(self.model, self.tok, [prompt], num=num, how=how)
        return {"results": attach(out, mode, title, text), "sampling": how.__dict__}

    def recommend(self, req: dict) -> dict:
        query = validate.plain(req.get("query", ""), LIMITS["chars"]).strip()
        validate.need(bool(query), "type a title or some text to find similar films")
        k = validate.number("k", req.get("k", 5), integer=True, lo=1, hi=LIMITS["k"])
        with self.lock:
            table, found = self.recommender.by_title(query, k)
        note = (
            f"Films like '{query}':"
            if found
            else f"'{query}' is not a film in this run's data; these overviews are closest to it as text:"
        )
        return {"note": note, "results": json.loads(table.to_json(orient="records"))}


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower() == "localhost"


def host_name(header: str) -> str:
    """The host part of a Host header: 'localhost:8765' -> 'localhost', '[::1]:80' -> '::1'."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class BadRequest(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Handler(BaseHTTPRequestHandler):
    """One request: the server carries the Demo (`server.demo`) and whether remote hosts are allowed. A watchdog
    answers 408 and closes the connection when the request is not read whole within LIMITS["timeout_s"]."""

    timeout = LIMITS["timeout_s"]  # no single read waits longer than the whole request may take

    def setup(self):
        super().setup()
        self.read = False
        self.watchdog = threading.Timer(LIMITS["timeout_s"], self._expire)
        self.watchdog.daemon = True
        self.watchdog.start()

    def finish(self):
        self.watchdog.cancel()
        try:
            super().finish()
        except OSError:  # the client left before its answer was flushed: nothing to do
            pass

    def _expire(self) -> None:
        """The request was not read whole in time: 408, and the connection closed under the reading thread."""
        if self.read:
            return
        body = validate.dumps({"error": "the request took too long to arrive"}).encode()
        head = f"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        try:
            self.connection.sendall(head.encode() + b"Connection: close\r\n\r\n" + body)
        except OSError:
            pass
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj: dict) -> None:
        self._send(status, validate.dumps(obj).encode(), "application/json")

    def _check_host(self) -> None:
        if not self.server.allow_remote and not is_loopback(host_name(self.headers.get("Host", ""))):
            raise BadRequest(HTTPStatus.MISDIRECTED_REQUEST, "this server answers only on a loopback address")

    def do_GET(self):
        self.read = True
        try:
            self._check_host()
        except BadRequest as e:
            return self._json(e.status, {"error": str(e)})
        if self.path == "/":
            self._send(
                HTTPStatus.OK, PAGE.replace("{chars}", str(LIMITS["chars"])).encode(), "text/html; charset=utf-8"
            )
        elif self.path == "/api/info":
            self._json(HTTPStatus.OK, {"model": self.server.demo.model_dir, "limits": LIMITS})
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": "not found"})

    def _body(self) -> dict:
        """The request's JSON object, or a BadRequest: same-origin JSON only, never more than body_bytes read."""
        self._check_host()
        origin, host = self.headers.get("Origin"), host_name(self.headers.get("Host", ""))
        if origin is not None and host_name(origin.split("://", 1)[-1].split("/")[0]) != host:
            raise BadRequest(HTTPStatus.FORBIDDEN, "cross-origin requests are refused")
        if (self.headers.get("Content-Type") or "").split(";")[0].strip().lower() != "application/json":
            raise BadRequest(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send JSON (Content-Type: application/json)")
        if self.headers.get("Transfer-Encoding"):
            raise BadRequest(HTTPStatus.LENGTH_REQUIRED, "send a Content-Length, not a chunked body")
        raw = (self.headers.get("Content-Length") or "").strip()
        if not raw.isdigit():
            raise BadRequest(HTTPStatus.LENGTH_REQUIRED, "a Content-Length of 0 or more bytes is required")
        if int(raw) > LIMITS["body_bytes"]:
            raise BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request too large")
        try:
            body = self.rfile.read(int(raw))
        except OSError:  # the watchdog closed it, or the client left
            raise BadRequest(HTTPStatus.REQUEST_TIMEOUT, "the request took too long to arrive") from None
        if len(body) < int(raw):
            raise BadRequest(HTTPStatus.REQUEST_TIMEOUT, "the body is shorter than its Content-Length")
        self.read = True
        try:
            req = validate.loads(body or b"{}")
        except (ValueError, UnicodeDecodeError, RecursionError) as e:  # nesting too deep is malformed too
            raise BadRequest(HTTPStatus.BAD_REQUEST, f"the body is not valid JSON ({first_line(e)})") from None
        if not isinstance(req, dict):
            raise BadRequest(HTTPStatus.BAD_REQUEST, "the request must be a JSON object")
        return req

    def do_POST(self):
        routes = {"/api/generate": self.server.demo.generate, "/api/recommend": self.server.demo.recommend}
        if self.path not in routes:
            self.read = True
            return self._json(HTTPStatus.NOT_FOUND, {"error": "not found"})
        try:
            self._json(HTTPStatus.OK, routes[self.path](self._body()))
        except BadRequest as e:
            if e.status == HTTPStatus.REQUEST_TIMEOUT and not self.read:
                return  # the watchdog answered 408 already, or the client is gone
            self._json(e.status, {"error": str(e)})
        except OSError:  # the client left while its answer was written: nothing more to say
            pass
        except (UserError, ValueError, TypeError, OverflowError) as e:
            self._json(HTTPStatus.BAD_REQUEST, {"error": first_line(e)})
        except Exception as e:  # a bug: the client still gets an answer, and the server keeps serving
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"internal error: {type(e).__name__}"})

    def send_error(self, code, message=None, explain=None):
        """http.server's own refusals (a malformed request line, a method it has no handler for) stay 4xx."""
        if code >= 500:  # 501 unsupported method, 505 unsupported version: the client's request, not a fault here
            code, message = (HTTPStatus.METHOD_NOT_ALLOWED, "only GET and POST") if code == 501 else (400, message)
        super().send_error(code, message, explain)

    def log_message(self, fmt, *args):  # keep the terminal quiet; errors still reach the page
        pass


class Server(ThreadingHTTPServer):
    """http.server's threading server with a listen backlog for bursts, at most LIMITS["workers"] requests handled
    at once (one more gets 503 at once), and clients that leave mid-request handled quietly."""

    request_queue_size = LIMITS["backlog"]
    daemon_threads = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.slots = threading.BoundedSemaphore(LIMITS["workers"])

    def process_request(self, request, client_address):
        if not self.slots.acquire(blocking=False):
            body = validate.dumps({"error": "busy: try again in a moment"}).encode()
            try:
                request.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
                    + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                    + body
                )
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request, client_address):
        """A client that leaves (reset, broken pipe, timeout) is no error of the server's: nothing is printed.
        Anything else gets one line, never a traceback."""
        kind, value = sys.exc_info()[:2]
        if kind is not None and issubclass(kind, (ConnectionError, TimeoutError, OSError)):
            return
        print(f"moviegpt: demo: a request failed ({kind.__name__ if kind else 'unknown'}: {value})", file=sys.stderr)


def make_server(
    model_dir: str, host: str = "127.0.0.1", port: int = 8765, allow_remote: bool = False
) -> ThreadingHTTPServer:
    if not is_loopback(host) and not allow_remote:
        raise UserError(
            f"--host {host} is not a loopback address; the demo would be reachable from other machines "
            "(add --allow-remote if that is what you want)"
        )
    demo = Demo(model_dir)
    try:
        server = Server((host, port), Handler)
    except (OSError, OverflowError) as e:
        raise UserError(f"cannot serve on {host}:{port}: {getattr(e, 'strerror', None) or e}") from None
    server.demo, server.allow_remote = demo, allow_remote
    if not is_loopback(host):
        print(
            f"moviegpt: warning: the demo is served on {host}, reachable by anyone who can reach this machine; it has "
            "no login",
            file=sys.stderr,
        )
    return server


def serve(model_dir: str, host: str = "127.0.0.1", port: int = 8765, allow_remote: bool = False) -> None:
    server = make_server(model_dir, host, port, allow_remote)
    print(f"moviegpt demo on http://{host}:{server.server_address[1]}/ (Ctrl-C stops it)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
