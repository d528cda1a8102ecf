"""moviegpt.core.reference and `moviegpt export`: a real smoke run's artifacts, exported and read back as the book
reads a reference run."""

import json
import shutil

from moviegpt.book import comparison
from moviegpt.cli import parser
from moviegpt.core import artifacts, reference
from moviegpt.core.rundir import RunDir
from moviegpt.core.settings import load_run_config
from moviegpt.eval import score


def test_export_copies_the_artifacts_without_weights_and_stamps_them(smoke_run, tmp_path, capsys):
    dest = tmp_path / "data" / "reference" / "smoke-ref"
    assert parser.main(["export", str(smoke_run), str(dest)]) == 0
    got = sorted(p.name for p in dest.iterdir())
    assert (
        "model" not in got and "checkpoints" not in got and not any(p.suffix == ".safetensors" for p in dest.rglob("*"))
    )
    assert {"config.yaml", "summary.json", "metrics.jsonl", "reference.json"} <= set(got)
    made = json.loads((dest / "reference.json").read_text())
    info = RunDir(smoke_run).info()
    assert made["code"] == info.code and made["machine"] == artifacts.describe_machine(info.hardware)
    assert made["exported_by"] == artifacts.code_version() and made["finished"].endswith("UTC")
    ref = reference.references(tmp_path)["smoke-ref"]
    assert ref.summary() == RunDir(smoke_run).summary() and ref.metrics() == RunDir(smoke_run).metrics()


def test_export_refuses_an_unfinished_run_and_a_used_folder_and_writes_nothing(smoke_run, tmp_path, capsys):
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine")
    assert parser.main(["export", str(smoke_run), str(used)]) == 2
    assert [p.name for p in used.iterdir()] == ["keep.txt"] and (used / "keep.txt").read_text() == "mine"
    half = tmp_path / "half"
    shutil.copytree(smoke_run, half, ignore=shutil.ignore_patterns("model", "checkpoints", "summary.json"))
    assert parser.main(["export", str(half), str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("moviegpt: error: ") for line in err)


def test_the_book_shows_a_reference_only_when_it_was_scored_on_the_same_films(smoke_run, tmp_path):
    cfg = load_run_config(smoke_run)
    score.score(RunDir(smoke_run), cfg, log=lambda m: None)
    reference.export(smoke_run, tmp_path / reference.FOLDER / "ref")
    found = comparison.references(tmp_path, cfg)
    assert list(found) == ["ref"]
    facts = comparison.reference_facts(RunDir(smoke_run), score.read(RunDir(smoke_run)), found)
    assert "not made by this build" in facts["ref_sentence"] and facts["ref_ratio_ci"].startswith("1.00 ")
    other = load_run_config(smoke_run)
    other.text.max_length = 64  # another scoring: not comparable, so not shown
    assert comparison.references(tmp_path, other) == {}
