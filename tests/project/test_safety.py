"""The whole package (no one module): safetensors only, no remote code, no unpickling, generated text escaped."""

import re
from pathlib import Path

import pytest
import torch
import transformers
from conftest import PROJECT_ROOT as ROOT

from moviegpt import UserError
from moviegpt.book import results
from moviegpt.model.causal_lm import load_trained

SOURCES = sorted((ROOT / "src" / "moviegpt").rglob("*.py"))  # every layer's modules


def calls(text: str, name: str) -> list[str]:
    """Each call of `name(` with its arguments (to the matching parenthesis)."""
    out = []
    for m in re.finditer(re.escape(name) + r"\(", text):
        depth, i = 1, m.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        out.append(text[m.start() : i])
    return out


def test_our_code_never_unpickles_or_runs_remote_code():
    assert len(SOURCES) > 40  # the package's modules, in its layer folders
    for path in SOURCES:
        text = path.read_text()
        assert "trust_remote_code=True" not in text, path
        assert not re.search(r"^\s*(import pickle|from pickle|import dill|import joblib)", text, re.M), path
        assert all("weights_only=True" in c for c in calls(text, "torch.load")), path
        assert all("allow_pickle=False" in c for c in calls(text, "np.load")), path


def test_the_trainers_own_loads_are_weights_only():
    """Resuming loads the optimizer, scheduler and RNG state of our own checkpoints through Trainer."""
    text = Path(transformers.trainer.__file__).read_text()
    loads = calls(text, "torch.load")
    assert loads and all("weights_only=True" in c for c in loads)


def test_a_pickled_model_is_refused(tmp_path, smoke_run):
    model = tmp_path / "pickled"
    model.mkdir()
    (model / "config.json").write_text((smoke_run / "model" / "config.json").read_text())
    torch.save({"lm_head.weight": torch.zeros(2, 2)}, model / "pytorch_model.bin")
    with pytest.raises(UserError, match="only as safetensors"):
        load_trained(model)


def test_runs_hold_no_pickles_but_trainer_state(smoke_run):
    """Weights are safetensors; the only torch-serialised files are the optimizer, scheduler and RNG
    state that Trainer writes into checkpoints (and reads back with weights_only=True)."""
    files = [p for p in smoke_run.path.rglob("*") if p.is_file()]
    assert (smoke_run / "model" / "model.safetensors").exists()
    assert not [p for p in files if p.name == "training_args.bin" or p.suffix in (".pkl", ".pickle")]
    assert {p.name for p in files if p.suffix in (".bin", ".pt", ".pth")} <= {
        "optimizer.pt",
        "scheduler.pt",
        "rng_state.pth",
    }


def test_generated_text_is_escaped_in_the_book():
    evil = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    from types import SimpleNamespace

    from moviegpt.core.artifacts import Example, Sample

    gen = Sample(text=evil, ended_with_eos=True)
    ev = SimpleNamespace(
        examples=[Example(title=evil, real=evil, generated={"base": gen, "fine-tuned": gen})], chat=None
    )
    html = results.generation_examples(ev).to_html()
    assert "<script>" not in html and "<img" not in html and "&lt;script&gt;" in html


def test_the_demo_page_never_writes_html_from_data():
    from moviegpt.cli import demo

    page = demo.PAGE
    assert "innerHTML" not in page and "outerHTML" not in page and "insertAdjacentHTML" not in page
    assert "document.write" not in page and "textContent" in page


def test_every_from_pretrained_says_trust_remote_code_false():
    for f in SOURCES:
        for line_no, line in enumerate(f.read_text().splitlines(), 1):
            if ".from_pretrained(" in line and "def " not in line and "GPT2Tokenizer" not in line:
                assert "trust_remote_code=False" in line or "**kw" in line, f"{f.name}:{line_no}: {line.strip()}"
