"""moviegpt.core.validate: a model directory that names its own code is refused; no terminal control gets through."""

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import run_cli

from moviegpt.core.errors import terminal

# ------------------------------------------------------------------ code from data


def model_dir_with_code(tmp: Path, smoke_run) -> Path:
    """A copy of a real model directory whose config names its own module, which would leave a marker if run."""
    d = tmp / "sneaky"
    d.mkdir()
    for f in (smoke_run / "model").iterdir():
        (d / f.name).write_bytes(f.read_bytes())
    (d / "evil.py").write_text(
        f"open({str(tmp / 'RAN')!r}, 'w').write('yes')\nfrom transformers import GPT2Config as Evil\n"
    )
    cfg = json.loads((d / "config.json").read_text())
    cfg["auto_map"] = {"AutoConfig": "evil.Evil", "AutoModelForCausalLM": "evil.Evil"}
    (d / "config.json").write_text(json.dumps(cfg))
    tok = json.loads((d / "tokenizer_config.json").read_text())
    tok["auto_map"] = {"AutoTokenizer": ["evil.Evil", None]}
    (d / "tokenizer_config.json").write_text(json.dumps(tok))
    return d


def test_a_model_directory_that_names_code_is_refused_without_a_prompt(smoke_run, tmp_path):
    d = model_dir_with_code(tmp_path, smoke_run)
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    for argv in (
        ["train", "--config", "smoke", "--set", f"model.name={d}", "--set", f"runs_dir={tmp_path / 'r'}"],
        ["train", "--config", "smoke", "--set", f"model.tokenizer={d}", "--set", f"runs_dir={tmp_path / 'r'}"],
        ["generate", "--model", str(d), "--title", "Heat"],
        ["evaluate", "--model", str(d)],
    ):
        r = subprocess.run(
            [sys.executable, "-m", "moviegpt.cli", *argv],
            input="y\ny\n",
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=300,
        )
        assert r.returncode == 2 and "never runs code from a model directory" in r.stderr, r.stderr
        assert "[y/N]" not in r.stdout + r.stderr and not (tmp_path / "RAN").exists()


# ------------------------------------------------------------------ terminal injection


def test_control_characters_never_reach_the_terminal(smoke_run, capfd):
    evil = "\x1b[2J\x1b]0;pwned\x07Heat\x9b31m"
    code, out, err = run_cli(
        capfd,
        "generate",
        "--model",
        str(smoke_run / "model"),
        "--mode",
        "completion",
        "--title",
        evil,
        "--text",
        "A thief",
        "--num",
        "1",
        "--max-new-tokens",
        "4",
    )
    assert code == 0 and "Heat" in out and not any(c in out + err for c in "\x1b\x07\x9b")
    code, out, err = run_cli(capfd, "recommend", "--model", str(smoke_run / "model"), "--title", evil, "-k", "2")
    assert code == 0 and not any(c in out + err for c in "\x1b\x07\x9b")
    assert terminal("a\x1b]0;title\x07b\x1b[31mc\nd") == "abc\nd"
