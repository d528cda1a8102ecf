"""moviegpt.book.records, words, intro and the chapter modules: what the chapters show, from a real smoke run's
artifacts, and which of them import no model library."""

import os
import subprocess
import sys

import pandas as pd
from conftest import PROJECT_ROOT

from moviegpt.book import arms, implementation, intro, records, results, words
from moviegpt.core.artifacts import EVAL_TITLES
from moviegpt.core.rundir import RunDir
from moviegpt.core.settings import load_config
from moviegpt.core.stats import Interval

PAGE_MODULES = ("arms", "records", "words", "intro", "results", "study", "references", "implementation", "limitations")


def test_importing_the_pages_modules_loads_no_model_library():
    code = "import sys\n" + "".join(f"import moviegpt.book.{m}\n" for m in PAGE_MODULES)
    code += "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, sorted(sys.modules)[:5]\n"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_chapters_that_read_artifacts_run_without_torch(monkeypatch):
    """The introduction, Results and Limitations execute, glue and plot from the book's finished runs, the study
    and the committed results alone."""
    monkeypatch.setenv("MOVIEGPT_PROFILE", "smoke")
    monkeypatch.chdir(PROJECT_ROOT)
    runs = arms.runs()  # trained here first if need be (each in a process of its own), so the chapters only read
    records.evaluation(runs[arms.MAIN])
    results.scores(runs)  # score.json of every run, as `moviegpt book` writes it
    code = (
        "import sys, jupytext\n"
        "from unittest import mock\n"
        "with mock.patch('myst_nb.glue'):\n"
        "    for ch in ('intro', 'results', 'limitations'):\n"
        "        nb = jupytext.read(f'{ch}.md')\n"
        "        exec(compile('\\n'.join(c.source for c in nb.cells if c.cell_type == 'code'), ch, 'exec'), {})\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n"
    )
    env = dict(os.environ, MOVIEGPT_PROFILE="smoke", MPLBACKEND="Agg")
    r = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT / "book", env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]


def test_the_config_shown_holds_only_what_applied(smoke_run):
    cfg = records.run_config(RunDir(smoke_run))
    shown = implementation.applied(cfg)
    assert "runs_dir" not in shown and "lora" not in shown  # a place on disk; a section a full fine-tune ignores
    assert shown["model"]["n_layer"] == cfg.model.n_layer  # a scratch model's shape did apply
    lora = implementation.applied(load_config("demo", ["train.lora=true"]))
    assert lora["lora"]["r"] == 8 and "n_layer" not in lora["model"]  # a pretrained model: no scratch shape


def test_tables_keep_every_character_and_escape_markup_in_cells_and_labels():
    long = "A line\nand another " + "word " * 60 + "<b>end</b>"
    html = words.texts(pd.DataFrame({"<i>name</i>": [long]})).to_html()
    assert "white-space: pre-wrap" in html and "&lt;b&gt;end&lt;/b&gt;" in html and "word " * 60 in html
    assert "&lt;i&gt;name&lt;/i&gt;" in html and "<i>name" not in html


def test_intervals_and_verdicts_have_one_helper_each():
    iv = Interval(0.9, 0.85, 0.95, 64)
    assert words.ci(iv) == "0.90 (95% CI 0.85–0.95)" and words.span(iv) == "0.85–0.95"
    assert words.verdict(iv, 1.0, "worse", "better", "same") == "better"
    assert words.verdict(Interval(1.0, 0.97, 1.02, 64), 1.0, "worse", "better", "same") == "same"
    assert words.verdict(Interval(0.05, 0.01, 0.09, 32), 0.0, "up", "down", "flat") == "up"


def test_the_first_box_and_findings_come_from_the_artifacts(smoke_run):
    run = RunDir(smoke_run)
    s, h = run.summary(), intro.facts(run)
    assert h["steps"] == s.steps and h["tokens_trained"] == s.tokens_seen and h["test_films"] == s.final.films
    assert h["orig_length"] == load_config("seed").text.max_length  # the original recipe, read from seed.yaml
    ev = records.evaluation(run)
    found = results.learned(ev)
    eos = [e.generated["fine-tuned"].ended_with_eos for e in ev.examples]
    assert found["cut_tuned"] == 1 - sum(eos) / len(eos) and found["n_titles"] == len(ev.examples) == EVAL_TITLES
    words_real = sum(ev.generation["real"].words) / len(ev.examples)
    words_tuned = sum(ev.generation["fine-tuned"].words) / len(ev.examples)
    assert found["length_of_means_tuned"] == f"{words_tuned / words_real:.2f}"  # a ratio of means, not of ratios
    assert set(ev.faithfulness) == {"base", "fine-tuned", results.FLOOR}  # GPT-2 has no chat format
    assert ev.chat is None and "no chat template" in results.chat_facts(ev, run)["chat_sentence"]
    views = results.views(run, ev)
    assert views["test_after"] == s.final.perplexity


def test_a_run_records_the_code_that_made_it_and_the_book_says_when_it_was_other_code(smoke_run):
    from moviegpt.core.artifacts import code_version

    run = RunDir(smoke_run)
    assert run.info().code == code_version() and len(code_version()["source"]) == 12
    assert "made by the code that built this book" in intro.facts(run)["code_note"]
    assert "made by other code" in records.code_note({"version": "0.0.1", "source": "000000000000"})
    assert "does not record" in records.code_note(None)
