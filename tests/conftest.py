"""Shared by every test file (no module of its own): hypothesis profile, smoke run, demo server, and helpers."""

import hashlib
import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

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
    from moviegpt.train.finetune import run

    return run(smoke_cfg, log=lambda m: None)


@pytest.fixture(scope="session")
def gpt2_tok():
    from moviegpt.model.tokenizer import load_tokenizer

    return load_tokenizer("gpt2-bundled")[0]


@pytest.fixture(scope="module")
def server(smoke_run):
    """The demo server on the smoke run's model, on a free loopback port (the port is what the tests get)."""
    import threading

    from moviegpt.cli import demo

    srv = demo.make_server(str(smoke_run / "model"), "127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1]
    srv.shutdown()


# ------------------------------------------------------------------ helpers shared by the test files
# (each imported by name: `from conftest import run_cli, one_error`; moviegpt is imported inside them, after the
# environment above is set)

ROW = re.compile(r"^\| `([a-z0-9-]+)` \| (.+) \| `(.+)` \|$")
# a hypothesis budget for the slower classes of outside input (a model directory, a nested config)
EXAMPLES = settings(max_examples=12, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)


def readme_rows() -> dict[str, str]:
    """The "Bad input" table (tests/bad_inputs.md): each row's name and the text its error line must contain."""
    text = (Path(__file__).parent / "bad_inputs.md").read_text()
    return {m[1]: m[3] for line in text.splitlines() if (m := ROW.match(line))}


def snapshot(root: Path) -> dict:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def run_cli(capfd, *argv) -> tuple[int, str, str]:
    """`moviegpt *argv` in-process: the exit code, stdout and stderr."""
    from moviegpt.cli import parser

    capfd.readouterr()
    code = parser.main(list(argv))
    out = capfd.readouterr()
    return code, out.out, out.err


def run_argv(argv, capfd) -> tuple[int, str]:
    """`moviegpt argv` in-process, each argument made text: the exit code and stderr."""
    from moviegpt.cli import parser

    capfd.readouterr()
    code = parser.main([str(a) for a in argv])
    return code, capfd.readouterr().err


def one_error(capfd, fragment, *argv, after_progress=False) -> None:
    """Exit 2 and one error line; a command that got as far as training may have logged its progress first."""
    code, _, err = run_cli(capfd, *argv)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and lines and lines[-1].startswith("moviegpt: error:") and fragment in lines[-1], err
    assert len(lines) == 1 or (after_progress and not any("error" in line.lower() for line in lines[:-1])), err


def one_line(code: int, err: str, codes=(2,)) -> str:
    """Exit 2 (or one of `codes`), one `moviegpt: error:` line, never an internal error; returns the line."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code in codes, err
    assert "internal error" not in err and "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("moviegpt: error: "), err
    return lines[0]


def one_line_or_ok(code: int, err: str) -> None:
    """Exit 0, or exit 2 with one `moviegpt: error:` line free of terminal controls."""
    assert code in (0, 2), err  # 1 is an internal error: a bug this test exists to find
    assert "Traceback" not in err
    if code == 2:
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("moviegpt: error: "), err
        assert "\x1b" not in lines[0]


@pytest.fixture
def run_copy(smoke_run, tmp_path):
    """A copy of the smoke run's directory, to damage."""
    import shutil

    from moviegpt.core.rundir import RunDir

    d = tmp_path / "runs" / smoke_run.name
    shutil.copytree(smoke_run.path, d)
    return RunDir(d)


@pytest.fixture
def plans(tmp_path, monkeypatch):
    """Plans go to a temporary cache, not the user's (moviegpt.train.plan)."""
    from moviegpt.train import plan as planner

    monkeypatch.setattr(planner, "PLANS", tmp_path / "plans")
    return tmp_path / "plans"


@pytest.fixture
def budget():
    """budget(folder, minutes, *overrides): the smoke profile with a budget in minutes, its runs under folder."""
    from moviegpt.core.settings import load_config

    def make(folder, minutes: float, *extra: str):
        return load_config("smoke", [f"runs_dir={folder / 'runs'}", f"train.budget_minutes={minutes}", *extra])

    return make
