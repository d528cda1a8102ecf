import os
from pathlib import Path

import pytest
from hypothesis import settings

PROJECT_ROOT = Path(__file__).resolve().parents[1]  # the repository; tests import it from here
CHROMIUM_ARGS = [  # headless Chromium in a container, offline: no sandbox, no GPU, nothing fetched in the background
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

os.environ.setdefault("MOVIEGPT_PROGRESS", "0")  # test logs stay free of progress bars
# CI replays the same examples every time (a failure is reproducible from the log); locally they vary
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never wait on the hub; hub paths are tested by forcing this


@pytest.fixture(scope="session")
def smoke_cfg(tmp_path_factory):
    from moviegpt import load_config

    return load_config("smoke", [f"runs_dir={tmp_path_factory.mktemp('runs')}"])


@pytest.fixture(scope="session")
def smoke_run(smoke_cfg):
    """One real smoke training run (tiny GPT-2, real tokenizer, real bundled films), shared by the tests."""
    from moviegpt.train import run

    return run(smoke_cfg, log=lambda m: None)


@pytest.fixture(scope="session")
def gpt2_tok():
    from moviegpt.tokens import load_tokenizer

    return load_tokenizer("gpt2-bundled")[0]


@pytest.fixture(scope="module")
def server(smoke_run):
    """The demo server on the smoke run's model, on a free loopback port (the port is what the tests get)."""
    import threading

    from moviegpt import demo

    srv = demo.make_server(str(smoke_run / "model"), "127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1]
    srv.shutdown()
