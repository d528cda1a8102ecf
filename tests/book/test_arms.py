"""moviegpt.book.arms: which runs the book shows, and what it reads before any chapter runs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT

from moviegpt.book import arms
from moviegpt.core.errors import UserError


def test_the_profile_must_be_a_shipped_profile_never_a_path(monkeypatch):
    for bad in ("../../elsewhere", "/tmp/x", "nosuchprofile", "smoke/.."):
        monkeypatch.setenv("MOVIEGPT_PROFILE", bad)
        with pytest.raises(UserError, match="MOVIEGPT_PROFILE"):
            arms.profile()
    monkeypatch.setenv("MOVIEGPT_PROFILE", "smoke")
    assert arms.profile() == "smoke" and arms.manifest(PROJECT_ROOT).parent == PROJECT_ROOT / "runs"


def test_a_pointer_to_the_runs_is_trusted_only_when_each_arm_is_its_own_run(monkeypatch, tmp_path):
    monkeypatch.setenv("MOVIEGPT_PROFILE", "smoke")
    monkeypatch.chdir(PROJECT_ROOT)
    good = arms.runs()  # trained here first if need be
    path = arms.manifest(PROJECT_ROOT)
    kept = path.read_text()
    try:
        names = json.loads(kept)["runs"]
        assert {k: v.name for k, v in arms.pointed(PROJECT_ROOT).items()} == {k: r.name for k, r in good.items()}
        swapped = names | {arms.MAIN: names[arms.LORA], arms.LORA: names[arms.MAIN]}
        path.write_text(json.dumps({"profile": "smoke", "runs": swapped}))
        assert arms.pointed(PROJECT_ROOT) == {}  # the LoRA run's config is not the main arm's
        path.write_text(json.dumps({"profile": "smoke", "runs": names | {arms.MAIN: "../../etc"}}))
        assert arms.pointed(PROJECT_ROOT) == {}  # not a plain folder under runs/
        path.write_text("{ cut short")
        assert arms.pointed(PROJECT_ROOT) == {}
    finally:
        path.write_text(kept)


@pytest.mark.slow
def test_jupyter_book_run_directly_over_a_bad_profile_stops_with_one_line():
    """The command the project's users know, over a broken state: moviegpt's own line, nothing above it but
    jupyter-book's banner, and no traceback."""
    jb = Path(sys.executable).parent / "jupyter-book"
    env = dict(os.environ, MOVIEGPT_PROFILE="../../elsewhere")
    r = subprocess.run(
        [str(jb), "build", str(PROJECT_ROOT), "--path-output", "/tmp/moviegpt-unused"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
    err = [line for line in r.stderr.splitlines() if line.strip()]
    assert err and err[0].startswith("moviegpt: error: MOVIEGPT_PROFILE=") and len(err) == 1, r.stderr
    assert "Traceback" not in r.stdout + r.stderr
