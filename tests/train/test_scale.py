"""Scale-out in miniature: two data-parallel CPU processes (torchrun, gloo), the accelerate configs
for the larger models, streaming, and the token cache that makes a second prepare a load."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import PROJECT_ROOT

from moviegpt import UserError, load_config
from moviegpt.core.rundir import RunDir
from moviegpt.data import movies, stream, tokens
from moviegpt.train.finetune import run

ACCELERATE = sorted((PROJECT_ROOT / "configs" / "accelerate").glob("*.yaml"))
# dropout off and fp32, so one process with batch 8 and two with batch 4 compute the same global batch
DDP_RECIPE = [
    "model.dropout=0",
    "train.precision=fp32",
    "data.max_train_rows=96",
    "data.max_eval_rows=16",
    "train.max_steps=6",
    "train.logging_steps=1",
    "train.eval_steps=3",
    "train.save_steps=3",
    "train.save_total_limit=2",
]


def train_cli(launcher: list[str], runs: Path, *extra: str) -> subprocess.CompletedProcess:
    args = [*launcher, "-m", "moviegpt.cli", "train", "--config", "smoke", "--set", f"runs_dir={runs}"]
    args += [a for o in [*DDP_RECIPE, *extra] for a in ("--set", o)]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error", OMP_NUM_THREADS="1")
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)


def test_two_process_ddp_matches_one_process_with_the_same_global_batch(tmp_path):
    one = train_cli([sys.executable], tmp_path / "one", "train.batch_size=8")
    assert one.returncode == 0, one.stderr[-3000:]
    two = train_cli(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"],
        tmp_path / "two",
        "train.batch_size=4",
    )
    assert two.returncode == 0, two.stderr[-3000:]
    [d1], [d2] = (list((tmp_path / n).iterdir()) for n in ("one", "two"))
    losses = lambda d: [(m["step"], m["loss"]) for m in RunDir(d).metrics() if m["kind"] == "train"]
    evals = lambda d: [(m["step"], m["eval_loss"]) for m in RunDir(d).metrics() if m["kind"] == "eval"]
    assert [s for s, _ in losses(d2)] == [s for s, _ in losses(d1)] == list(range(1, 7))
    for (_, a), (_, b) in zip(losses(d1), losses(d2)):
        assert b == pytest.approx(a, abs=1e-4)  # the same global batches; only the reduction order differs
    for (_, a), (_, b) in zip(evals(d1), evals(d2)):
        # Trainer's distributed evaluation repeats a block to give both ranks equal shares of an odd count
        assert b == pytest.approx(a, abs=0.05)
    s1, s2 = (json.loads((d / "summary.json").read_text()) for d in (d1, d2))
    assert s2["final"]["loss"] == pytest.approx(s1["final"]["loss"], abs=1e-4)
    assert s2["tokens_seen"] == s1["tokens_seen"] == 6 * 8 * 128  # counted over both processes
    # rank 0 alone wrote the run: the same files as one process, but one RNG state per rank in each checkpoint
    files = lambda d: {str(p.relative_to(d)) for p in d.rglob("*") if p.is_file() and p.name != "train.log"}
    rng = lambda names: {n for n in names if "/rng_state" in n}
    assert files(d2) - rng(files(d2)) == files(d1) - rng(files(d1))
    assert rng(files(d2)) == {f"checkpoints/checkpoint-{s}/rng_state_{r}.pth" for s in (3, 6) for r in (0, 1)}
    assert len((d2 / "metrics.jsonl").read_text().splitlines()) == len((d1 / "metrics.jsonl").read_text().splitlines())


@pytest.mark.parametrize("path", ACCELERATE, ids=lambda p: p.stem)
def test_accelerate_configs_parse_and_are_complete(path):
    from accelerate.commands.config.config_args import ClusterConfig

    raw = yaml.safe_load(path.read_text())
    cfg = ClusterConfig.from_yaml_file(str(path))  # accelerate's own reader: unknown keys are an error
    assert cfg.distributed_type.value == raw["distributed_type"] and str(cfg.mixed_precision) == "bf16"
    if raw["distributed_type"] == "FSDP":
        from transformers.models.gpt2 import modeling_gpt2  # the class it wraps exists in GPT-2's code

        assert hasattr(modeling_gpt2, cfg.fsdp_config["fsdp_transformer_layer_cls_to_wrap"])
    if raw["distributed_type"] == "DEEPSPEED":
        assert cfg.deepspeed_config["gradient_accumulation_steps"] == load_config("full").train.grad_accum
        assert cfg.deepspeed_config["gradient_clipping"] == load_config("full").train.max_grad_norm


def test_fsdp_config_is_accepted_by_the_trainer_on_cpu(tmp_path):
    """TrainingArguments takes the FSDP settings of the config file (the wrap class, sharding, state dict)."""
    from transformers import TrainingArguments

    fsdp = yaml.safe_load((PROJECT_ROOT / "configs/accelerate/fsdp-gpt2-large.yaml").read_text())["fsdp_config"]
    args = TrainingArguments(
        output_dir=str(tmp_path),
        use_cpu=True,
        fsdp="full_shard auto_wrap",
        fsdp_config={k.removeprefix("fsdp_"): v for k, v in fsdp.items()},
        report_to="none",
    )
    assert args.fsdp_config["transformer_layer_cls_to_wrap"] == ["GPT2Block"]


def test_streaming_trains_for_max_steps_on_the_same_split(tmp_path):
    cfg = load_config(
        "smoke",
        [
            f"runs_dir={tmp_path}",
            "data.streaming=true",
            "train.max_steps=4",
            "train.eval_steps=2",
            "train.save_steps=2",
            "data.max_eval_rows=16",
        ],
    )
    stream_test = stream.take_films(stream.stream_films(cfg.data, "test"), 10_000)
    table_test = movies.load_splits(load_config("smoke", ["data.max_eval_rows=10000"]).data, cfg.seed).test
    assert sorted(stream_test["id"]) == sorted(
        table_test["id"].astype(str)
    )  # a film's split does not depend on how it is read
    d = run(cfg, log=lambda m: None)
    s = json.loads((d / "summary.json").read_text())
    assert (
        s["steps"] == 4 and s["tokens_seen"] == 4 * 8 * 128 and s["train_examples"] is None
    )  # a stream's size is unknown
    assert s["data"]["streaming"] and s["data"]["splits"]["train"]["used"] is None
    assert s["final"]["films"] == 16 and s["final"]["loss"] < s["base"]["loss"]


def test_streaming_needs_max_steps():
    with pytest.raises(UserError, match="data.streaming=true needs train.max_steps"):
        load_config("smoke", ["data.streaming=true"])


def test_second_prepare_loads_the_token_cache(gpt2_tok):
    cfg = load_config("smoke", ["data.max_train_rows=500"])
    films = movies.load_splits(cfg.data, cfg.seed).train
    first = tokens.tokenize(films, gpt2_tok, cfg.text)
    again = tokens.tokenize(films, gpt2_tok, cfg.text)
    assert again.cache_files == first.cache_files and again["input_ids"] == first["input_ids"]
    assert tokens.tokenize(films.head(499), gpt2_tok, cfg.text).cache_files != first.cache_files  # keyed by content


def test_num_proc_workers_give_the_same_blocks(gpt2_tok):
    over = ["data.max_train_rows=2500", "text.block_size=96"]
    films = movies.load_splits(load_config("smoke", over).data, 0).train
    two = tokens.tokenize(films, gpt2_tok, load_config("smoke", [*over, "text.num_proc=2"]).text)
    one = tokens.tokenize(films, gpt2_tok, load_config("smoke", over).text)
    assert two.cache_files != one.cache_files  # two workers wrote their own shards
    assert abs(len(two) - len(one)) <= 2  # each worker's last batch drops its own partial block
    assert two[0]["input_ids"] == one[0]["input_ids"]  # the first batch of films is the same in both
