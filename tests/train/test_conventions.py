"""What Hugging Face fine-tuning users reach for: tracking, a hub-readable model card, LoRA through peft,
continuing a run, generation controls, --version, settings that document themselves, chapters that open as
notebooks, and no import side effects."""

import json
import os
import subprocess
import sys

import pytest
from conftest import PROJECT_ROOT as ROOT
from transformers import pipeline

import moviegpt
from moviegpt import load_config
from moviegpt.cli import parser
from moviegpt.core.config import all_keys
from moviegpt.core.rundir import RunDir
from moviegpt.train.finetune import run

SMALL = [
    "data.max_train_rows=48",
    "data.max_eval_rows=16",
    "train.max_steps=4",
    "train.eval_steps=2",
    "train.save_steps=2",
    "train.logging_steps=1",
]


def test_version(capfd):
    assert parser.main(["--version"]) == 0
    assert capfd.readouterr().out.strip() == f"moviegpt {moviegpt.__version__}"


def test_every_key_has_help_and_config_prints_it(capfd):
    assert all(f.metadata.get("help") for f in all_keys().values())
    assert parser.main(["config", "--keys"]) == 0
    out = capfd.readouterr().out
    for key in all_keys():
        assert f"\n{key} = " in "\n" + out, key
    assert parser.main(["config", "--config", "demo", "--set", "train.budget_minutes=2"]) == 0
    out = capfd.readouterr().out
    assert out.startswith("# demo-") and "budget_minutes: 2.0" in out


def test_hash_exclusions_come_from_field_metadata():
    base = load_config("smoke")
    assert base.hash() == "e0fa0d73"  # the smoke run's directory name from before settings carried metadata
    for key, f in all_keys().items():
        if f.metadata["hash"] == "no":
            section, _, name = key.rpartition(".")
            target = getattr(base, section) if section else base
            value = getattr(target, name)
            other = {str: "elsewhere", bool: not value, float: 3.0, int: 3, list: "[0.5]"}.get(type(value), 3)
            assert load_config("smoke", [f"{key}={other}"]).hash() == base.hash(), key


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory):
    cfg = load_config(
        "smoke",
        [
            f"runs_dir={tmp_path_factory.mktemp('tb')}",
            *SMALL,
            "train.report_to=tensorboard",
            "train.trainer_args.gradient_checkpointing=true",
        ],
    )
    return run(cfg, log=lambda m: None), cfg


def test_tensorboard_events_land_in_the_run(tracked_run):
    run_dir, cfg = tracked_run
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert (run_dir / "metrics.jsonl").exists()  # the book's log stays
    assert load_config("smoke", SMALL).hash() != cfg.hash()  # trainer_args count in the hash, report_to does not
    assert load_config("smoke", [*SMALL, "train.trainer_args.gradient_checkpointing=true"]).hash() == cfg.hash()


def test_a_wrong_trainer_arg_value_is_one_line(tmp_path, capfd):
    capfd.readouterr()
    code = parser.main(
        [
            "train",
            "--config",
            "smoke",
            "--set",
            f"runs_dir={tmp_path}",
            "--set",
            "train.trainer_args.lr_scheduler_kwargs=7",
        ]
    )
    err = capfd.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "train.trainer_args.lr_scheduler_kwargs=7 must be" in err[0], err
    code = parser.main(
        [
            "train",
            "--config",
            "smoke",
            "--set",
            f"runs_dir={tmp_path}",
            "--set",
            "train.trainer_args.logging_strategy=sometimes",
        ]
    )  # a value TrainingArguments refuses
    err = capfd.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("moviegpt: error:"), err


def test_model_card_is_read_by_the_hub_tooling(smoke_run):
    from huggingface_hub import ModelCard

    data = ModelCard.load(str(smoke_run / "model" / "README.md")).data
    assert data.license == "mit" and data.pipeline_tag == "text-generation" and "moviegpt" in data.tags
    assert data.datasets and "TMDB 5000" in data.datasets[0]
    (result_before, result_after) = data.eval_results
    summary = smoke_run.summary()
    assert result_before.metric_value == pytest.approx(summary.base.perplexity, rel=1e-3)
    assert result_after.metric_value == pytest.approx(summary.final.perplexity, rel=1e-3)
    assert data.base_model is None  # a GPT-2 built from config has no pretrained weights to name


def test_base_model_is_the_real_hub_id():
    from moviegpt.core.config import ModelConfig
    from moviegpt.model.causal_lm import base_model_id

    assert base_model_id(ModelConfig(name="gpt2")) == "openai-community/gpt2"
    assert base_model_id(ModelConfig(name="smollm2-135m")) == "HuggingFaceTB/SmolLM2-135M-Instruct"


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    cfg = load_config(
        "smoke", [f"runs_dir={tmp_path_factory.mktemp('lora')}", *SMALL, "train.lora=true", "train.learning_rate=1e-2"]
    )
    return run(cfg, log=lambda m: None)


def test_lora_saves_an_adapter_and_a_merged_model(lora_run):
    from safetensors.torch import load_file

    adapter = lora_run / "adapter"
    assert (adapter / "adapter_config.json").exists() and (adapter / "adapter_model.safetensors").exists()
    assert json.loads((adapter / "adapter_config.json").read_text())["target_modules"]
    weights = load_file(adapter / "adapter_model.safetensors")
    assert weights and all("lora_" in k for k in weights)
    info = lora_run.info()
    assert 0 < info.trainable_parameters < info.parameters / 5
    out = pipeline("text-generation", model=str(lora_run / "model"))(
        "Movie: Heat\nOverview:", max_new_tokens=4, do_sample=False
    )[0]["generated_text"]
    assert out.startswith("Movie: Heat\nOverview:")
    merged = load_file(lora_run / "model" / "model.safetensors")
    assert not any("lora_" in k for k in merged)  # plain transformers weights
    s = lora_run.summary()
    assert s.final.perplexity < s.base.perplexity


def test_lora_resumes_after_a_kill(tmp_path):
    """A LoRA run killed after its first checkpoint resumes from it to the same losses as an uninterrupted one."""
    args = [
        sys.executable,
        "-m",
        "moviegpt.cli",
        "train",
        "--config",
        "smoke",
        *[a for s in SMALL for a in ("--set", s)],
        "--set",
        "train.lora=true",
        "--set",
        "train.max_steps=6",
        "--set",
        "model.dropout=0",
    ]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    ref = subprocess.run(args + ["--set", f"runs_dir={tmp_path / 'ref'}"], env=env, capture_output=True, text=True)
    assert ref.returncode == 0, ref.stderr
    runs = tmp_path / "killed"
    p = subprocess.Popen(args + ["--set", f"runs_dir={runs}"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    import time

    while p.poll() is None and not list(runs.glob("*/checkpoints/checkpoint-2/adapter_model.safetensors")):
        time.sleep(0.2)
    p.kill()
    p.wait()
    again = subprocess.run(args + ["--set", f"runs_dir={runs}"], env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    losses = lambda d: [round(m["eval_loss"], 5) for m in RunDir(next(d.iterdir())).metrics() if m["kind"] == "eval"]
    assert losses(runs) == losses(tmp_path / "ref")


def test_continue_from_a_finished_run(smoke_run, tmp_path, capfd):
    capfd.readouterr()
    more = [
        "train.max_steps=4",
        "train.eval_steps=2",
        "train.save_steps=2",
        "data.max_train_rows=48",
    ]  # same test films
    code = parser.main(
        [
            "train",
            "--config",
            "smoke",
            "--from",
            str(smoke_run),
            "--set",
            f"runs_dir={tmp_path}",
            *[a for s in more for a in ("--set", s)],
        ]
    )
    out, err = capfd.readouterr()
    assert code == 0, err
    child = RunDir(json.loads(out)["run_dir"])
    info = child.info()
    assert info.parent.run == smoke_run.name and info.parent.final_perplexity == smoke_run.summary().final.perplexity
    assert child.summary().base.perplexity == pytest.approx(smoke_run.summary().final.perplexity, rel=1e-3)
    assert f"Continued from**: run `{smoke_run.name}`" in (child / "model" / "README.md").read_text()
    code = parser.main(
        [
            "train",
            "--config",
            "smoke",
            "--from",
            str(smoke_run),
            "--set",
            f"runs_dir={tmp_path}",
            "--set",
            "data.splits=[0.8, 0.1, 0.1]",
        ]
    )
    assert code == 2 and "parent's data.source, data.splits and seed" in capfd.readouterr().err


def test_generation_controls_are_recorded(smoke_run, capfd):
    from moviegpt.eval.generate import Sampling, generate_for

    how = Sampling(max_new_tokens=30, repetition_penalty=1.3, no_repeat_ngram_size=2, seed=3)
    out = generate_for(str(smoke_run / "model"), ["Heat"], how=how)
    words = out[0]["text"].split()
    pairs = list(zip(words, words[1:]))
    assert len(pairs) == len(set(pairs))  # no 2-gram of words repeats (tokens, so words nearly always)
    code = parser.main(
        [
            "generate",
            "--model",
            str(smoke_run / "model"),
            "--title",
            "Heat",
            "--num",
            "1",
            "--repetition-penalty",
            "1.2",
            "--no-repeat-ngram-size",
            "3",
            "--max-new-tokens",
            "5",
        ]
    )
    assert code == 0


def test_concept_titles_that_exist_are_drawn_again(smoke_run):
    from moviegpt.eval.generate import Sampling, concepts
    from moviegpt.model.causal_lm import load_trained

    model, tok, s = load_trained(str(smoke_run / "model"))
    how = Sampling(max_new_tokens=12, seed=0)
    first = concepts(model, tok, s["template"], 4, how, known=set(), tries=1)
    known = {r["title"].casefold() for r in first}  # every first title now "exists"
    again = concepts(model, tok, s["template"], 4, how, known=known, tries=3)
    assert all(r["first_title_known"] for r in again) and all(r["draws"] > 1 for r in again)
    assert all(r["draws"] == 3 or not r["title_known"] for r in again)


def test_no_module_changes_global_state_on_import():
    code = (
        "import matplotlib, pandas as pd\n"
        "before = (dict(matplotlib.rcParams), pd.get_option('display.max_colwidth'))\n"
        "import pkgutil, importlib, moviegpt\n"
        "for m in pkgutil.iter_modules(moviegpt.__path__): importlib.import_module(f'moviegpt.{m.name}')\n"
        "assert (dict(matplotlib.rcParams), pd.get_option('display.max_colwidth')) == before\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1")
    )
    assert r.returncode == 0, r.stderr


def test_a_chapter_runs_as_a_notebook_against_the_smoke_run(smoke_run, tmp_path, monkeypatch):
    """The chapter opens through jupytext (as `jupyter lab book/results.md` does) and executes headless."""
    import jupytext
    from nbclient import NotebookClient

    nb = jupytext.read(ROOT / "book" / "results.md")
    env = {"MOVIEGPT_PROFILE": "smoke", "MOVIEGPT_PROGRESS": "0"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(ROOT / "book")}}
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 5


# ------------------------------------------------------------------ progress on screen, and nowhere else

TINY = [
    "--config",
    "smoke",
    "--set",
    "data.max_train_rows=32",
    "--set",
    "train.max_steps=6",
    "--set",
    "train.eval_steps=3",
]


def test_progress_shows_in_a_terminal_and_not_in_a_log(tmp_path):
    import fcntl
    import pty
    import struct
    import termios

    quiet = ("MOVIEGPT_PROGRESS", "HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS")
    env = {k: v for k, v in os.environ.items() if k not in quiet} | {"HF_HUB_OFFLINE": "1"}
    args = [sys.executable, "-m", "moviegpt.cli", "train", *TINY]
    r = subprocess.run(args + ["--set", f"runs_dir={tmp_path / 'log'}"], env=env, capture_output=True, text=True)
    assert r.returncode == 0 and "it/s" not in r.stderr and "%|" not in r.stderr and "{'loss'" not in r.stdout
    leader, follower = pty.openpty()  # a real terminal on stderr, with a real terminal's size
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # (tqdm draws nothing at 0 columns)
    p = subprocess.Popen(
        args + ["--set", f"runs_dir={tmp_path / 'tty'}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=follower,
        stdin=subprocess.DEVNULL,
    )
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    assert p.wait() == 0
    text = seen.decode(errors="replace")
    assert "6/6" in text and ("it/s" in text or "s/it" in text) and "<" in text  # steps, rate, and tqdm's ETA


def test_train_run_in_a_notebook_shows_trainer_progress(tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    for quiet in ("MOVIEGPT_PROGRESS", "HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS"):
        monkeypatch.delenv(quiet, raising=False)
    code = (
        "from moviegpt import load_config\nfrom moviegpt.train.finetune import run\n"
        f"run(load_config('smoke', {[f'runs_dir={tmp_path}', 'data.max_train_rows=32', 'train.max_steps=4']!r}))"
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    NotebookClient(nb, timeout=600, kernel_name="python3").execute()
    html = [o["data"].get("text/html", "") for o in nb.cells[0].outputs if o.get("output_type") == "display_data"]
    assert any("<progress" in h for h in html)  # transformers' NotebookProgressCallback
