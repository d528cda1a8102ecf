"""moviegpt.core.reference and `moviegpt export`: a real smoke run's artifacts, exported and read back as the book
reads a reference run."""

import json
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moviegpt.book import references
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
    ref = reference.references(tmp_path).ok["smoke-ref"]
    assert ref.summary == RunDir(smoke_run).summary() and ref.run.metrics() == RunDir(smoke_run).metrics()


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
    found, left = references.shown(tmp_path, cfg)
    assert list(found) == ["ref"] and left == []
    facts = references.facts(RunDir(smoke_run), score.read(RunDir(smoke_run)), found, left)
    assert "not made by this build" in facts["ref_sentence"] and "is 1.00 (95% CI" in facts["ref_sentence"]
    assert "the smoke profile with" in facts["ref_sentence"]  # what it trained, from its own config
    other = load_run_config(smoke_run)
    other.data.held_out_length = 64  # another scoring: not comparable, so not shown
    found, left = references.shown(tmp_path, other)
    assert found == {} and left == ["ref: scored on other films or settings than this build's"]


def test_a_damaged_linked_or_shrunk_reference_is_left_out_with_a_line(smoke_run, tmp_path):
    cfg = load_run_config(smoke_run)
    score.score(RunDir(smoke_run), cfg, log=lambda m: None)
    folder = tmp_path / reference.FOLDER
    for name in ("no-machine", "cut-short", "code-text", "three-films", "linked", "good"):
        reference.export(smoke_run, folder / name)
    stamp = lambda n: folder / n / "reference.json"
    made = json.loads(stamp("good").read_text())
    stamp("no-machine").write_text(json.dumps({k: v for k, v in made.items() if k != "machine"}))
    stamp("cut-short").write_text(stamp("good").read_text()[:40])
    stamp("code-text").write_text(json.dumps(made | {"code": "0.2.0"}))
    sc = json.loads((folder / "three-films" / "score.json").read_text())
    sc["held_out"]["film_nll"], sc["held_out"]["film_tokens"] = (
        sc["held_out"]["film_nll"][:3],
        sc["held_out"]["film_tokens"][:3],
    )
    (folder / "three-films" / "score.json").write_text(json.dumps(sc))
    outside = tmp_path / "outside.json"
    outside.write_text((folder / "linked" / "summary.json").read_text())
    (folder / "linked" / "summary.json").unlink()
    (folder / "linked" / "summary.json").symlink_to(outside)
    found, left = references.shown(tmp_path, cfg)
    assert list(found) == ["good"]
    why = dict(line.split(": ", 1) for line in left)
    assert "machine" in why["no-machine"] and "code" in why["code-text"] and "cut-short" in why
    assert "films" in why["three-films"] and "regular file" in why["linked"]


def test_export_refuses_links_and_a_linked_destination_and_deletes_nothing_it_did_not_make(smoke_run, tmp_path):
    mine = tmp_path / ".ref.partial"  # a folder of the user's that happens to bear export's old staging name
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    reference.export(smoke_run, tmp_path / "ref")
    assert (mine / "keep.txt").read_text() == "mine"
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    assert parser.main(["export", str(smoke_run), str(tmp_path / "link")]) == 2
    assert list(target.iterdir()) == [] and not list(tmp_path.glob(".link.*"))
    run = tmp_path / "run"
    shutil.copytree(smoke_run, run, ignore=shutil.ignore_patterns("checkpoints"))
    secret = tmp_path / "secret.txt"
    secret.write_text("not the run's")
    (run / "eval.json").unlink(missing_ok=True)
    (run / "eval.json").symlink_to(secret)
    assert parser.main(["export", str(run), str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ a reference folder is input (hypothesis)


JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=12)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def exported(smoke_run, tmp_path_factory):
    cfg = load_run_config(smoke_run)
    score.score(RunDir(smoke_run), cfg, log=lambda m: None)
    root = tmp_path_factory.mktemp("refs")
    reference.export(smoke_run, root / "good")
    return root, cfg


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    file=st.sampled_from(["reference.json", "summary.json", "score.json"]),
    key=st.sampled_from(["machine", "code", "finished", "final", "held_out", "eos_nll", "films", "settings", "run"]),
    value=JSONISH,
    cut=st.one_of(st.none(), st.integers(min_value=0, max_value=400)),
)
def test_any_mutation_of_a_reference_is_shown_checked_or_left_out_with_a_line(
    exported, tmp_path, file, key, value, cut
):
    import tempfile
    from pathlib import Path

    root, cfg = exported
    tmp_path = Path(tempfile.mkdtemp(dir=tmp_path))  # a fresh folder for each example
    folder = tmp_path / reference.FOLDER / "mutated"
    shutil.copytree(root / "good", folder)
    path = folder / file
    text = path.read_text()
    if cut is not None:
        text = text[:cut]  # cut short
    else:
        d = json.loads(text)
        d[key] = value
        text = json.dumps(d)
    path.write_text(text)
    found, left = references.shown(tmp_path, cfg)  # never raises
    assert len(found) + len(left) == 1
    if found:  # shown only when still a whole record scored on this build's films
        ref = found["mutated"]
        assert len(ref.score.held_out.film_nll) == ref.score.held_out.films == cfg.data.max_eval_rows
        assert isinstance(ref.made["machine"], str)
        references.facts(RunDir(smoke_run_dir(root)), ref.score, found, left)  # and its sentence can be written
    else:
        assert left[0].startswith("mutated: ")


def smoke_run_dir(root):
    return root / "good"
