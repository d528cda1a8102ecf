"""moviegpt.book.study: a study folder read as outside input. A study made for the test from a real smoke run's
records (two arms, two seeds); any mutation of its files leaves the reader standing, with a line for what it left
out. (Making a real study, and reading it back: tests/train/test_study.py.)"""

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moviegpt.book import study
from moviegpt.core.rundir import RunDir

JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=12)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def made(smoke_run, tmp_path_factory):
    """data/study/tiny: two arms x two seeds, each run the smoke run's records with a two-point curve."""
    root = tmp_path_factory.mktemp("root")
    out = root / study.FOLDER / "tiny"
    final = RunDir(smoke_run).summary().final
    point = lambda step, tokens: {
        "kind": "films",
        "step": step,
        "tokens_seen": tokens,
        "train_seconds": float(step),
        "film_nll": final.film_nll,
        "film_tokens": final.film_tokens,
        "type_nll": final.type_nll,
        "type_tokens": final.type_tokens,
    }
    runs = []
    for arm in ("a", "b"):
        for seed in (1, 2):
            folder = out / f"{arm}-seed{seed}"
            folder.mkdir(parents=True)
            for name in ("config.yaml", "summary.json"):
                shutil.copyfile(smoke_run / name, folder / name)
            (folder / "metrics.jsonl").write_text("".join(json.dumps(point(s, 100 * s)) + "\n" for s in (0, 4)))
            runs.append({"arm": arm, "seed": seed, "folder": folder.name, "finished": "2026-01-01 00:00 UTC"})
    record = {
        "name": "tiny",
        "arms": [{"name": "a", "says": "first"}, {"name": "b", "says": "second", "from": "a"}],
        "seeds": [1, 2],
        "runs": runs,
        "budget": {"films": 8, "tokens": 400},
        "passes": 2,
    }
    (out / "study.json").write_text(json.dumps(record))
    return root


def test_the_made_study_reads_whole(made):
    s = study.load(made, "tiny")
    assert s.complete and s.left_out == [] and len(s.runs) == 4
    c = study.compare(s, "a", "b")
    assert c["seeds"].value == pytest.approx(1.0) and c["n_seeds"] == 2  # the same records: no difference


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    where=st.sampled_from(["study.json", "a-seed1/summary.json", "b-seed2/metrics.jsonl", "a-seed2/config.yaml"]),
    key=st.sampled_from(["arms", "seeds", "runs", "name", "final", "film_nll", "type_nll", "step", "resolved"]),
    value=JSONISH,
    cut=st.one_of(st.none(), st.integers(min_value=0, max_value=300)),
)
def test_any_mutation_of_a_study_is_read_or_left_out_with_a_line(made, tmp_path, where, key, value, cut):
    import tempfile

    root = Path(tempfile.mkdtemp(dir=tmp_path)) / "root"  # a fresh folder for each example
    shutil.copytree(made, root)
    path = root / study.FOLDER / "tiny" / where
    text = path.read_text()
    if cut is not None:
        text = text[:cut]
    elif where.endswith(".json"):
        d = json.loads(text)
        d[key] = value
        text = json.dumps(d)
    elif where.endswith(".jsonl"):
        rows = [json.loads(line) for line in text.splitlines()]
        rows[-1][key] = value
        text = "".join(json.dumps(r) + "\n" for r in rows)
    else:
        text = text.replace("resolved:", f"{key}: {json.dumps(value)}\nresolved:", 1)
    path.write_text(text)
    s = study.load(root, "tiny")  # never raises
    assert s is not None
    assert len(s.runs) + len([line for line in s.left_out if "seed" in line.split(":")[0]]) <= 4
    for run in s.runs.values():  # what is read is whole: every point scores the same films
        assert all(len(p["film_nll"]) == len(run.final.film_nll) for p in run.curve)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    key=st.sampled_from(["budget", "passes", "made_with", "code", "finished"]),
    value=JSONISH,
)
def test_the_stamps_the_sentences_read_are_checked_as_the_study_is_read(made, tmp_path, key, value):
    """study.json's budget, passes and maker, and each run's code and finish time, feed the Results sentences:
    a study whose stamps are of the wrong kind is refused with a line, or read and its sentences composed."""
    import tempfile

    from moviegpt.book import results

    root = Path(tempfile.mkdtemp(dir=tmp_path)) / "root"
    shutil.copytree(made, root)
    path = root / study.FOLDER / "tiny" / "study.json"
    d = json.loads(path.read_text())
    if key in ("code", "finished"):
        d["runs"][0][key] = value
    else:
        d[key] = value
    path.write_text(json.dumps(d))
    s = study.load(root, "tiny")
    facts = results.study_facts(s)  # never raises
    assert (s.runs and facts["study_runs"] == "4") or (not s.runs and "cannot be read" in facts["study_sentence"])
