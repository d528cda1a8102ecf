"""moviegpt.train.study and moviegpt.book.study: a real tiny study (the smoke model, two seeds, three arms), made,
resumed, exported and read back the way the book reads it."""

import json
import shutil
import textwrap

import pytest

from moviegpt.book import results, study as book_study
from moviegpt.core.errors import UserError
from moviegpt.train import study

pytestmark = pytest.mark.slow

SPEC = """
about: a tiny study for the tests
profile: smoke
films: 48
passes: 2
seeds: [1, 2]
curve: [0, 0.25, 0.5, 1]
common: [train.precision=fp32, train.logging_steps=1, train.save_steps=0]
arms:
  - name: original
    says: padded, no EOS target
    set: [text.batching=pad, text.max_length=64, text.eos=false]
  - name: pack
    says: plus the EOS target and packing
    set: [text.eos=true, text.batching=pack]
  - name: apart
    says: plus keeping films apart
    set: [text.keep_apart=true]
"""


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    for name in ("_toc.yml", "_config.yml"):  # a project folder: what study.make takes the project from
        (root / name).write_text("")
    spec = root / "tiny.yaml"
    spec.write_text(SPEC)
    import os

    here = os.getcwd()
    os.chdir(root)
    try:
        out = study.make(spec, log=lambda m: None)
    finally:
        os.chdir(here)
    return root, spec, out


def test_every_arm_trains_the_same_tokens_at_every_seed_and_is_exported(made):
    root, spec, out = made
    record = json.loads((out / "study.json").read_text())
    budget = record["budget"]
    assert len(record["runs"]) == 6 and {r["arm"] for r in record["runs"]} == {"original", "pack", "apart"}
    assert [a["from"] for a in record["arms"]] == [None, "original", "pack"]
    s = book_study.load(root, "tiny")
    assert s.complete and s.left_out == []
    for run in s.runs.values():
        per_step = budget["arms"][run.arm]["tokens_per_step"]
        assert abs(run.tokens - budget["tokens"]) <= per_step  # equal tokens, to within one step's
        assert [p["step"] for p in run.curve] == [0, round(0.25 * run.steps), round(0.5 * run.steps), run.steps]
        assert run.curve[0]["tokens_seen"] == 0 and run.curve[-1]["tokens_seen"] == run.tokens
        assert all(len(p["film_nll"]) == len(run.curve[0]["film_nll"]) for p in run.curve)
    assert not any(p.name == "model" for p in out.rglob("*"))  # records only, no weights


def test_the_book_reads_the_study_across_seeds_and_films(made):
    root, _, _ = made
    s = book_study.load(root, "tiny")
    c = book_study.compare(s, "pack", "apart")
    assert c["n_seeds"] == 2 and c["seeds"].lo <= c["seeds"].value <= c["seeds"].hi
    assert c["films"].n == len(s.runs[("pack", 1)].final.film_nll)
    table = results.steps(s)
    assert list(table["arms"]) == ["original → pack", "pack → apart"]
    curve = book_study.curve(s, "apart")
    assert (curve["low"] <= curve["perplexity"]).all() and (curve["perplexity"] <= curve["high"]).all()
    p = book_study.plateau(s, "apart")
    assert p["best"] <= p["start"] and 0 < p["reached_share"] <= 1
    facts = results.study_facts(s)
    assert facts["study_runs"] == "6" and facts["study_seeds"] == "2" and "pack" in facts["changes_sentence"]


def test_a_study_resumes_reusing_what_it_made(made):
    """The same command again: every run is found finished and reused (no run's summary is written again)."""
    root, spec, out = made
    import os

    finished = {p: p.stat().st_mtime_ns for p in (root / "runs").rglob("summary.json")}
    assert len(finished) == 6
    here = os.getcwd()
    os.chdir(root)
    try:
        study.make(spec, log=lambda m: None)
    finally:
        os.chdir(here)
    assert {p: p.stat().st_mtime_ns for p in (root / "runs").rglob("summary.json")} == finished


def test_a_damaged_study_run_is_left_out_with_a_line(made, tmp_path):
    root, _, out = made
    copy = tmp_path / "data" / "study" / "tiny"
    shutil.copytree(out, copy)
    (copy / "pack-seed2" / "summary.json").write_text("{ cut")
    (copy / "apart-seed1" / "metrics.jsonl").unlink()
    (copy / "apart-seed1" / "metrics.jsonl").symlink_to(out / "apart-seed1" / "metrics.jsonl")
    s = book_study.load(tmp_path, "tiny")
    assert len(s.runs) == 4 and not s.complete
    assert {line.split(":")[0] for line in s.left_out} == {"pack-seed2", "apart-seed1"}


def test_a_bad_study_file_stops_before_anything_trains(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(textwrap.dedent(SPEC).replace("text.keep_apart=true", "text.keep_apart=maybe"))
    with pytest.raises(UserError, match="keep_apart"):
        study.load(bad)
    bad.write_text(SPEC.replace("seeds: [1, 2]", "seeds: [1, 1]"))
    with pytest.raises(UserError, match="seeds"):
        study.load(bad)
