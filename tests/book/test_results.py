"""moviegpt.book.results: the facts the Results chapter glues, from a real run's artifacts."""

import os
import socket
import subprocess
import sys
import threading

from moviegpt.book import results
from moviegpt.core.rundir import RunDir


def test_offline_the_hub_perplexity_is_a_sentence_saying_it_needs_the_hub(smoke_run):
    got = results.hub_perplexity(RunDir(smoke_run), 30.0)["hub_ppl_sentence"]
    assert "could not reach" in got and "averages the perplexity of each film" in got


def test_a_hub_that_answers_but_cannot_serve_the_module_gives_a_sentence_not_a_failed_book(smoke_run):
    """The online path: hub.reachable() is true (a local endpoint accepts), the module's download fails."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)

    def answer():
        while True:
            conn, _ = srv.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    threading.Thread(target=answer, daemon=True).start()
    env = dict(os.environ, HF_ENDPOINT=f"http://127.0.0.1:{srv.getsockname()[1]}", HF_HUB_OFFLINE="0")
    code = (
        "from moviegpt.book import results; from moviegpt.core.rundir import RunDir; "
        f"print(results.hub_perplexity(RunDir({str(smoke_run)!r}), 30.0)['hub_ppl_sentence'])"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("The hub's perplexity module could not be run here (")


def test_samples_facts_say_what_the_run_sampled(smoke_run, smoke_cfg):
    run = RunDir(smoke_run)
    passes = [r for r in run.metrics() if r["kind"] == "samples"]
    assert smoke_cfg.train.samples == 0 and not passes  # smoke samples nothing: the sentence must say so
    assert "sampled no overviews during training (train.samples is 0)" in results.samples_facts(run)["samples_sentence"]


def test_samples_facts_say_what_a_sampling_run_sampled(tmp_path):
    from moviegpt import load_config
    from moviegpt.train.finetune import run as train

    cfg = load_config(
        "smoke",
        [f"runs_dir={tmp_path}", "train.max_steps=4", "train.eval_steps=2", "train.samples=2", "train.sample_tokens=8"],
    )
    r = RunDir(train(cfg, log=lambda m: None))
    passes = [m for m in r.metrics() if m["kind"] == "samples"]
    said = results.samples_facts(r)["samples_sentence"]
    assert len(passes) == 3  # step 0, 2 and 4
    assert "the same 2 test titles at each of its 3 validation passes" in said and "at most 8 new tokens" in said
    assert f"“{passes[0]['samples'][0]['title']}”" in said
    table = results.samples_table(r).data
    assert list(table["step"]) == [0, 2, 4] and all(table["overview"].str.len() > 0)
