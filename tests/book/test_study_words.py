"""The study's sentences (moviegpt.book.results, methodology, limitations) composed for what a study holds: our
recipe trained or not, one seed or several, a bundle of settings in one step. The study is written for the test
from a real smoke run's records, its losses scaled per arm and seed so that the arms differ."""

import json
import math
import shutil
import sys

import pandas as pd
import pytest

from moviegpt.book import limitations, methodology, results, study
from moviegpt.core.rundir import RunDir

COMMON = ["train.precision=bf16"]
ARMS = [
    {"name": "original", "says": "the report's recipe", "settings": [*COMMON, "train.learning_rate=5e-5"]},
    {
        "name": "ours",
        "says": "plus our schedule - four settings",
        "from": "original",
        "settings": [
            *COMMON,
            "train.learning_rate=5e-5",
            "train.learning_rate=3e-4",
            "train.lr_scheduler=cosine",
            "train.warmup_steps=0.1",
            "train.weight_decay=0.01",
        ],
    },
]
SCALE = {("original", 1): 1.0, ("original", 2): 1.01, ("ours", 1): 0.90, ("ours", 2): 0.91}  # of every loss


def scaled(h: dict, k: float) -> dict:
    return h | {
        "film_nll": [x * k for x in h["film_nll"]],
        "type_nll": {t: [x * k for x in v] for t, v in h["type_nll"].items()},
    }


def write(root, smoke_run, keep) -> None:
    out = root / study.FOLDER / "s"
    summary = json.loads((smoke_run / "summary.json").read_text())
    final = RunDir(smoke_run).summary().final
    runs = []
    for (arm, seed), k in SCALE.items():
        if (arm, seed) not in keep:
            continue
        folder = out / f"{arm}-seed{seed}"
        folder.mkdir(parents=True)
        shutil.copyfile(smoke_run / "config.yaml", folder / "config.yaml")
        (folder / "summary.json").write_text(json.dumps(summary | {"final": scaled(summary["final"], k)}))
        point = lambda i, k=k: {
            "kind": "films",
            "step": 2 * i,
            "tokens_seen": 100 * i,
            "train_seconds": float(i),
            **scaled(
                {"film_nll": final.film_nll, "type_nll": final.type_nll}, k ** (i / 2)
            ),  # falls along the run: 1, k^0.5, k
            "film_tokens": final.film_tokens,
            "type_tokens": final.type_tokens,
        }
        (folder / "metrics.jsonl").write_text("".join(json.dumps(point(i)) + "\n" for i in range(3)))
        runs.append({"arm": arm, "seed": seed, "folder": folder.name, "finished": "2026-01-01 00:00 UTC"})
    record = {"name": "s", "arms": ARMS, "seeds": [1, 2], "runs": runs, "budget": {"films": 8, "tokens": 200}}
    (out / "study.json").write_text(json.dumps(record | {"passes": 2}))


@pytest.fixture
def read(smoke_run, tmp_path):
    def make(keep=tuple(SCALE)):
        root = tmp_path / str(len(list(tmp_path.iterdir())))
        write(root, smoke_run, set(keep))
        return study.load(root, "s")

    return make


def test_our_recipe_over_two_seeds_is_said_as_a_mean_with_its_interval_and_its_bundle(read):
    s = read()
    f = results.study_facts(s)
    assert "not available" not in f["found_sentence"] + f["curve_sentence"] + f["main_sentence"]
    assert "went from" in f["found_sentence"] and "the mean over 2 training seeds" in f["found_sentence"]
    assert "95% CI for the mean over 2 seeds" in f["gain_seeds"]
    assert (
        "ours changes 4 (train.learning_rate, train.lr_scheduler, train.warmup_steps, train.weight_decay)"
        in (f["bundle_sentence"])
    )
    assert "ours" in f["changes_sentence"] and "better" in f["changes_sentence"]  # 0.90-0.91 of 1.0-1.01
    assert "The second pass lowered it further" in f["curve_sentence"]
    h = s.runs[("original", 1)].final  # the smoke run's own test records (scaled by 1): L nats per overview token
    nll, n = study.held_out_group(h, study.OVERVIEW)
    loss = float(nll.sum() / n.sum())
    per_seed = [math.exp(loss * (0.90 - 1.0)), math.exp(loss * (0.91 - 1.01))]  # ours over original, seed by seed
    assert results.steps(s)["ratio, each seed"].iloc[0] == " ".join(f"{x:.3f}" for x in per_seed)
    mean = math.exp(sum(map(math.log, per_seed)) / 2)  # ours against the report's recipe, the first arm, directly
    versus = f"Against the original arm (the report's recipe), trained on the same tokens, ours ends at {mean:.3f} ("
    assert versus in f["main_sentence"] and versus in f["found_sentence"] and f["versus_sentence"].endswith(": better.")
    assert "%" in limitations.study_reach(s)["reach_sentence"]


def test_an_arm_lower_than_our_recipe_is_named_first(read, monkeypatch):
    assert "best_sentence" not in results.study_facts(read())  # ours is the lowest in SCALE: nothing to add
    lower = {("original", 1): 0.90, ("original", 2): 0.91, ("ours", 1): 1.0, ("ours", 2): 1.01}
    monkeypatch.setattr(sys.modules[__name__], "SCALE", lower)  # write() reads it
    s = read(tuple(lower))
    f = results.study_facts(s)
    assert results.lowest_arm(s) == "original"
    said = "Our recipe is not the arm that ends lowest at these tokens: the original arm, the report's recipe, ends at"
    assert said in f["main_sentence"] and said in f["found_sentence"]
    assert "(95% CI for the mean over 2 seeds" in f["best_sentence"]
    assert f["versus_sentence"].endswith(": worse.")  # ours over the original, which is lowest
    assert "next lowest" not in f["best_sentence"]  # the runner-up is ours, already set against the original


def test_one_seed_is_said_to_be_one_never_an_interval(read):
    s = read([("original", 1), ("ours", 1)])
    f = results.study_facts(s)
    assert "one training seed" in f["found_sentence"] and f["ours_seeds"].endswith("(one seed, no interval)")
    assert "95% CI" not in f["gain_seeds"] and "cannot be judged" in f["curve_sentence"]
    assert "one seed so far" in f["changes_sentence"]
    assert f["versus_sentence"].endswith("on one seed, so no difference can be claimed.")
    assert results.steps(s)["95% CI for the mean over seeds"].iloc[0] == "one seed, no interval"
    assert "too few seeds" in limitations.study_reach(s)["reach_sentence"]


def test_a_study_without_our_recipe_says_so_in_whole_sentences(read):
    f = results.study_facts(read([("original", 1), ("original", 2)]))
    assert "has not trained our recipe yet (2 of its 4 runs" in f["found_sentence"]
    assert f["curve_sentence"] == "" and "cannot be stated" in f["main_sentence"]
    assert "not available" not in f["found_sentence"] and f["ours_seeds"] == "not available"
    assert "not trained both packing arms" in methodology.boundary_facts(read([("original", 1)]))["boundary_sentence"]
    assert "could not be read" in methodology.boundary_facts(None)["boundary_sentence"]


def test_placement_names_what_differs_and_how_often_a_seed_range_holds_a_new_run(read):
    s = read()
    row = {"precision": "fp32", "its validation perplexity": 30.0, "tokens trained": 50}
    table = pd.DataFrame(
        [
            row | {"run (this build)": "a", "training films": 8, "inside the seeds' range": "yes"},
            row | {"run (this build)": "b", "training films": 1800, "inside the seeds' range": results.NOT_PLACED},
        ]
    )
    f = results.placement_facts(table, s)
    assert f["placement_sentence"] == (
        "a falls inside the study's seed range; b trained a token count the study's curve does not reach, so it is "
        "not placed."
    )
    assert "drew on 8 training films; b drew on 1,800 films" in f["placement_caveat"]
    assert "a and b trained in another precision than the study's" in f["placement_caveat"]
    assert "only 33% of the time" in f["placement_caveat"]  # (2 - 1) / (2 + 1) for two seeds


def test_how_equal_the_tokens_are_is_said_from_the_runs_themselves(read):
    s = read()
    counts = sorted(r.tokens for r in s.runs.values())
    said = results.study_facts(s)["tokens_sentence"]
    off = max(abs(counts[0] - 200), abs(counts[-1] - 200)) / 200  # the fake study's budget: 200 tokens
    assert f"trained {counts[0]:,} to {counts[-1]:,} tokens, within {off:.1%} of it" in said
    assert results.study_facts(None)["tokens_sentence"] == ""


def test_the_lowest_arm_is_set_against_the_next_lowest(read, monkeypatch):
    lora = {"name": "lora", "says": "ours with LoRA", "from": "ours", "settings": [*COMMON, "train.lora=true"]}
    scale = {("original", 1): 0.90, ("original", 2): 0.91, ("ours", 1): 1.0, ("ours", 2): 1.01}
    scale |= {("lora", 1): 0.89, ("lora", 2): 0.905}
    monkeypatch.setattr(sys.modules[__name__], "ARMS", [*ARMS, lora])  # write() reads both
    monkeypatch.setattr(sys.modules[__name__], "SCALE", scale)
    s = read(tuple(scale))
    f = results.study_facts(s)
    nll, n = study.held_out_group(s.runs[("ours", 1)].final, study.OVERVIEW)
    loss = float(nll.sum() / n.sum())  # ours, seed 1, is the smoke run's loss scaled by 1
    lora_over_original = math.exp(loss * ((0.89 - 0.90) + (0.905 - 0.91)) / 2)  # the geometric mean of the 2 seeds
    assert "the lora arm, ours with LoRA, ends at" in f["best_sentence"]
    assert f"against the next lowest, original, it ends at {lora_over_original:.3f} (95% CI" in f["best_sentence"]
    assert f["versus_sentence"].endswith(": worse.")  # ours over the original, stated once, in its own sentence
