"""`moviegpt demo`: a one-page local web app to try a trained model (the report's "demonstration interface").

Standard library only (http.server): one HTML page and two JSON endpoints. Inputs are bounded
(characters, tokens, samples) and requests are served one at a time, so a single request cannot
exhaust the machine. Generated text reaches the page only through `textContent`, never as HTML.
"""
from __future__ import annotations

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from moviegpt.errors import UserError
from moviegpt.generate import attach, build_prompt, sample
from moviegpt.model import load_trained
from moviegpt.recommend import for_model

LIMITS = {"chars": 500, "max_new_tokens": 120, "num": 3, "k": 10, "body_bytes": 8192}

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
  const data = await call("/api/generate", {mode, title: $("title").value, text: $("text").value, num: 2});
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
        title, text = str(req.get("title", ""))[:LIMITS["chars"]], str(req.get("text", ""))[:LIMITS["chars"]]
        num = max(1, min(int(req.get("num", 1)), LIMITS["num"]))
        max_new = max(1, min(int(req.get("max_new_tokens", 80)), LIMITS["max_new_tokens"]))
        prompt = build_prompt(mode, self.settings["template"], title=title, text=text)
        with self.lock:
            out = sample(self.model, self.tok, [prompt], num=num, max_new_tokens=max_new, seed=int(req.get("seed", 0)))
        return {"results": attach(out, mode, title, text)}

    def recommend(self, req: dict) -> dict:
        query = str(req.get("query", "")).strip()[:LIMITS["chars"]]
        if not query:
            raise UserError("type a title or some text to find similar films")
        k = max(1, min(int(req.get("k", 5)), LIMITS["k"]))
        with self.lock:
            table, found = self.recommender.by_title(query, k)
        note = (f"Films like '{query}':" if found else
                f"'{query}' is not a film in this run's data; these overviews are closest to it as text:")
        return {"note": note, "results": json.loads(table.to_json(orient="records"))}


def handler_for(demo: Demo) -> type[BaseHTTPRequestHandler]:
    routes = {"/api/generate": demo.generate, "/api/recommend": demo.recommend}

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, obj: dict) -> None:
            self._send(status, json.dumps(obj).encode(), "application/json")

        def do_GET(self):
            if self.path == "/":
                self._send(HTTPStatus.OK, PAGE.replace("{chars}", str(LIMITS["chars"])).encode(), "text/html; charset=utf-8")
            elif self.path == "/api/info":
                self._json(HTTPStatus.OK, {"model": demo.model_dir, "limits": LIMITS})
            else:
                self._json(HTTPStatus.NOT_FOUND, {"error": "not found"})

        def do_POST(self):
            if self.path not in routes:
                return self._json(HTTPStatus.NOT_FOUND, {"error": "not found"})
            size = int(self.headers.get("Content-Length") or 0)
            if size > LIMITS["body_bytes"]:
                return self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "request too large"})
            try:
                req = json.loads(self.rfile.read(size) or b"{}")
                if not isinstance(req, dict):
                    raise ValueError("the request must be a JSON object")
                self._json(HTTPStatus.OK, routes[self.path](req))
            except (UserError, ValueError, TypeError) as e:
                self._json(HTTPStatus.BAD_REQUEST, {"error": str(e).splitlines()[0] if str(e) else "bad request"})

        def log_message(self, fmt, *args):  # keep the terminal quiet; errors still reach the page
            pass

    return Handler


def make_server(model_dir: str, host: str = "127.0.0.1", port: int = 8765) -> ThreadingHTTPServer:
    try:
        return ThreadingHTTPServer((host, port), handler_for(Demo(model_dir)))
    except OSError as e:
        raise UserError(f"cannot serve on {host}:{port}: {e.strerror}") from None


def serve(model_dir: str, host: str = "127.0.0.1", port: int = 8765) -> None:
    server = make_server(model_dir, host, port)
    print(f"moviegpt demo on http://{host}:{server.server_address[1]}/ (Ctrl-C stops it)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
