"""The benchmark harness runs end to end on tiny settings, and its token accounting is right.
(Benchmarks are never timed here; only that they measure what they say.)"""

import json
import sys

import pytest
import torch
from conftest import PROJECT_ROOT

from moviegpt import load_config
from moviegpt.data import movies, tokens

sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
import data_prep  # noqa: E402
import harness as bench  # noqa: E402  (the harness lives beside the benchmarks, not in the package)

TINY = [
    "model.n_layer=1",
    "model.n_head=2",
    "model.n_embd=32",
    "model.n_positions=128",
    "data.max_train_rows=48",
    "data.max_eval_rows=16",
    "text.max_length=64",
    "text.block_size=64",
]


def test_counting_collator_excludes_padding(gpt2_tok):
    films = movies.load_splits(load_config("smoke").data, 0).train.head(6)
    pad = tokens.tokenize(films, gpt2_tok, load_config("smoke", ["text.max_length=128"]).text, batching="pad")
    c = bench.CountingCollator()
    batch = c([pad[i] for i in range(len(pad))])
    lengths = [min(n, 128) for n in tokens.token_lengths(films, gpt2_tok, load_config("smoke").text.template)]
    assert c.counts == [(6 * 128, sum(n - 1 for n in lengths))]  # every real token but the first has a target
    assert batch["input_ids"].shape == (6, 128)
    packed = tokens.tokenize(films, gpt2_tok, load_config("smoke", ["text.block_size=32"]).text, batching="pack")
    c([packed[i] for i in range(4)])
    assert c.counts[-1] == (4 * 32, 4 * 31)  # packed blocks: no padding at all


def test_flops_per_token_is_llmc_6n_plus_6lct():
    from transformers import GPT2Config, GPT2LMHeadModel

    m = GPT2LMHeadModel(GPT2Config(vocab_size=100, n_positions=16, n_layer=2, n_head=2, n_embd=8))
    n = sum(p.numel() for p in m.parameters())
    assert bench.flops_per_token(m, 16) == 6 * n + 6 * 2 * 8 * 16


def test_peak_matmul_is_measured_only_for_native_precisions():
    from moviegpt.core.hardware import native_precisions

    assert 1e8 < bench.peak_matmul_flops("fp32", n=256, reps=2, trials=2) < 1e15
    for precision in {"bf16", "fp16"} - set(native_precisions()):  # emulated here: never timed
        with pytest.raises(ValueError, match="not native"):
            bench.peak_matmul_flops(precision, n=256)


def test_throughput_harness_end_to_end(tmp_path):
    import train_throughput

    recipes = {
        "base": [
            "model.name=scratch",
            "model.tokenizer=gpt2-bundled",
            "text.batching=pad",
            "train.batch_size=2",
            "train.precision=fp32",
            *TINY,
        ],
        "variants": {
            "+ packing": ["text.batching=pack"],
            "+ bf16": ["train.precision=bf16"],
            "pack, auto": ["text.batching=pack", "train.precision=auto"],
            "unused": [],
        },
        "quality": {"ours": ["text.batching=pack"]},
    }
    (tmp_path / "r.yaml").write_text(json.dumps(recipes))
    train_throughput.main(
        [
            "--recipes",
            str(tmp_path / "r.yaml"),
            "--rounds",
            "2",
            "--window-tokens",
            "256",
            "--only",
            "+ packing",
            "--only",
            "+ bf16",
            "--only",
            "pack, auto",  # a name with a comma
            "--peak-size",
            "256",
            "--out",
            str(tmp_path),
        ]
    )
    out = json.loads((tmp_path / "train_throughput.json").read_text())
    rows = {r["recipe"]: r for r in out["throughput"]}
    m = out["machine"]
    assert m["cpu_capability"] == torch.backends.cpu.get_cpu_capability() and m["cpu_cores"] >= 1
    native = bench.native("bf16")
    assert ("+ bf16" in rows) == native and ("+ bf16" in out["skipped"]) == (not native)  # never emulated
    assert set(out["peak_flops"]) == {r["precision"] for r in rows.values()}  # peaks only for what ran
    assert rows["pack, auto"]["precision"] == ("bf16" if native else "fp32") and "unused" not in rows
    assert rows["original"]["x_original"] == 1.0 and rows["original"]["useful_share"] < 1.0
    assert rows["original"]["x_original_by_round"] == [1.0, 1.0] and len(rows["+ packing"]["x_original_by_round"]) == 2
    with pytest.raises(SystemExit):  # a misspelt variant is refused before anything trains
        train_throughput.main(["--recipes", str(tmp_path / "r.yaml"), "--only", "+ pack", "--out", str(tmp_path)])
    assert rows["+ packing"]["useful_share"] == pytest.approx(
        63 / 64
    )  # packed: every position but the last has a target
    for r in rows.values():  # MFU is the median rate's FLOPs over the peak measured for its precision in this run
        # (not asserted below 1: a 256 x 256 matmul timed on a busy machine is no upper bound for the model's matmuls)
        assert r["peak_flops"] == out["peak_flops"][r["precision"]] > 0
        assert r["mfu"] == pytest.approx(r["tokens_per_s"] * r["flops_per_token"] / r["peak_flops"]) and r["mfu"] > 0
    q = {r["recipe"]: r for r in out["time_to_quality"]}
    assert q["original"]["seconds_to_target"] == q["original"]["train_seconds"]  # the target is where it ends
    assert all(p["val_loss"] > 0 for r in q.values() for p in r["curve"])
    ours = q["ours"]  # stops at the target by default: the hit is its last point, nothing trained past it
    if ours["seconds_to_target"] is not None:
        assert ours["curve"][-1]["val_loss"] <= ours["target_val_loss"] < min(p["val_loss"] for p in ours["curve"][:-1])
        assert ours["seconds_to_target"] == ours["train_seconds"]
    assert (
        ours["stopped_at_target"] == (ours["curve"][-1]["step"] < ours["steps"])
        and not q["original"]["stopped_at_target"]
    )
    train_throughput.main(
        ["--recipes", str(tmp_path / "r.yaml"), "--skip-throughput", "--name", "q", "--out", str(tmp_path)]
    )
    alone = json.loads((tmp_path / "q.json").read_text())  # gpu.sh runs time to quality last, on its own
    assert "throughput" not in alone and [r["recipe"] for r in alone["time_to_quality"]] == ["original", "ours"]


def test_replica_keeps_every_row_through_cleaning():
    df = bench.replica(12_000)
    clean, counts = movies.clean(movies.normalise(df))
    bundled, _ = movies.clean(movies.normalise(movies.read_table("bundled")))
    assert len(df) == 12_000 and df["id"].is_unique
    assert counts["dropped"]["duplicate_title_overview"] == counts["dropped"]["duplicate_id"] == 0
    assert len(clean) > 2 * len(bundled)
    splits = movies.load_splits(load_config("smoke", bench.replica_overrides(1_200)).data, 0)  # --replica-rows
    assert splits.counts.rows_in == 1_200 and len(splits.train) > 1_000  # not smoke's 256 films


def test_data_prep_both_recipes_on_a_small_replica(tmp_path):
    df = bench.replica(3000)
    df.to_parquet(tmp_path / "r.parquet")
    ours = data_prep.prepare_ours(str(tmp_path / "r.parquet"), block_size=128)
    orig = data_prep.prepare_original(str(tmp_path / "r.parquet"))
    assert ours["rows"] == orig["rows"] == 3000
    assert ours["tokens"] == ours["examples"] * 128 and orig["tokens"] == orig["examples"] * 128
    assert set(ours["stages"]) == {"load tokenizer", "load, clean, split", "tokenise and pack"}
