"""moviegpt.book.report and moviegpt.book.results: what the chapters show, from a real smoke run's artifacts."""

import os
import subprocess
import sys

from conftest import PROJECT_ROOT

from moviegpt.book import arms, comparison, report, results
from moviegpt.core.rundir import RunDir
from moviegpt.core.settings import load_config


def test_importing_the_report_loads_no_model_library():
    code = (
        "import sys, moviegpt.book.report, moviegpt.book.results, moviegpt.book.arms; "
        "assert 'torch' not in sys.modules, 'torch'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_chapters_that_read_artifacts_run_without_torch(monkeypatch):
    """The introduction, Results, Limitations and Performance execute, glue and plot from the book's finished runs
    and the committed benchmark results alone."""
    monkeypatch.setenv("MOVIEGPT_PROFILE", "smoke")
    monkeypatch.chdir(PROJECT_ROOT)
    arms.runs()  # trained here first if need be (each in a process of its own), so the chapters only read
    report.evaluation(arms.main_run())
    comparison.scores(arms.runs())  # score.json of every run, as `moviegpt book` writes it
    code = (
        "import sys, jupytext\n"
        "for ch in ('intro', 'results', 'limitations', 'performance'):\n"
        "    nb = jupytext.read(f'{ch}.md')\n"
        "    exec(compile('\\n'.join(c.source for c in nb.cells if c.cell_type == 'code'), ch, 'exec'), {})\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n"
    )
    env = dict(os.environ, MOVIEGPT_PROFILE="smoke", MPLBACKEND="Agg")
    r = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT / "book", env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]


def test_the_config_shown_holds_only_what_applied(smoke_run):
    cfg = report.run_config(RunDir(smoke_run))
    shown = report.applied(cfg)
    assert "runs_dir" not in shown and "lora" not in shown  # a place on disk; a section a full fine-tune ignores
    assert shown["model"]["n_layer"] == cfg.model.n_layer  # a scratch model's shape did apply
    lora = report.applied(load_config("demo", ["train.lora=true"]))
    assert lora["lora"]["r"] == 8 and "n_layer" not in lora["model"]  # a pretrained model: no scratch shape


def test_text_tables_keep_every_character_and_escape_markup():
    import pandas as pd

    long = "A line\nand another " + "word " * 60 + "<b>end</b>"
    html = report.texts(pd.DataFrame({"text": [long]})).to_html()
    assert "white-space: pre-wrap" in html and "&lt;b&gt;end&lt;/b&gt;" in html and "word " * 60 in html


def test_headline_and_findings_come_from_the_artifacts(smoke_run):
    run = RunDir(smoke_run)
    s, h = run.summary(), report.headline(run)
    assert h["steps"] == s.steps and h["tokens_trained"] == s.tokens_seen and h["train_films"] == s.data.used("train")
    assert h["orig_length"] == load_config("seed").text.max_length  # the original recipe, read from seed.yaml
    ev = report.evaluation(run)
    found = results.learned(ev)
    eos = [e.generated["fine-tuned"].ended_with_eos for e in ev.examples]
    assert found["cut_tuned"] == 1 - sum(eos) / len(eos) and found["n_titles"] == len(ev.examples) >= 32
    assert set(ev.faithfulness) == {"base", "fine-tuned", results.FLOOR}
    assert all(-1 <= x <= 1 for xs in ev.faithfulness.values() for x in xs)
    views = results.perplexity_views(run, ev)
    assert views["curve_first_step"] == 0  # the curve starts at the base model
    assert views["test_after"] == s.final.perplexity


def test_verdicts_follow_the_interval():
    from moviegpt.core.stats import Interval

    assert results.verdict(Interval(0.9, 0.85, 0.95, 64), "worse", "better", "same", none=1.0) == "better"
    assert results.verdict(Interval(1.0, 0.97, 1.02, 64), "worse", "better", "same", none=1.0) == "same"
    assert results.verdict(Interval(0.05, 0.01, 0.09, 32), "up", "down", "flat") == "up"


def test_a_run_records_the_code_that_made_it_and_the_book_says_when_it_was_other_code(smoke_run):
    from moviegpt.core.artifacts import code_version

    run = RunDir(smoke_run)
    assert run.info().code == code_version() and len(code_version()["source"]) == 12
    assert "made by the code that built this book" in report.headline(run)["code_note"]
    assert "made by other code" in report.code_note({"version": "0.0.1", "source": "000000000000"})
    assert "does not record" in report.code_note(None)
