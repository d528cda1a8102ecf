"""The train stage: `run(cfg)` from config to a finished run directory.

Like transformers' run_clm.py and litgpt's finetune/full.py, a run reads top to bottom, each object made once:
    choose   the model that can be had (the hub's, or the stand-in: moviegpt.model.causal_lm.choose)
    prepare  tokenizer, splits, datasets and model, once (`moviegpt prepare` shows what it made)
    plan     for train.budget_minutes: one row's step timed on what prepare made, and the step count, warm-up,
             validation and checkpoints fixed to fit, before Trainer is built (plan.py)
    setup    the base model's held-out evaluation, config.yaml
    fit      the one Trainer (moviegpt.train.trainer.build): resume, signals, checkpoints, divergence, and a planned
             run's deadline
    save     model/ (merged when LoRA trained), adapter/
    finish   held-out evaluation of the fine-tuned model, model card, summary.json (last: the run is finished)
A finished run is reused as it is; an unfinished one is resumed. A changed config hashes to a new
directory, so no run ever overwrites another. What the directory holds: moviegpt.core.rundir.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from moviegpt.core import mfu, validate
from moviegpt.core.artifacts import HeldOut, Parent, Plan, RunInfo, Summary, code_version, to_dict
from moviegpt.core.config import GENERATION_DEFAULTS, Config
from moviegpt.core.errors import Interrupted, UserError, first_line, reporting
from moviegpt.core.hardware import PeakMemory, hardware, resolve_precision, versions
from moviegpt.core.rundir import RunDir, lock, prepare_runs_dir
from moviegpt.core.settings import save_config
from moviegpt.data import movies, stream, tokens
from moviegpt.eval import evaluate
from moviegpt.eval.generate import Sampling
from moviegpt.model import causal_lm
from moviegpt.model.tokenizer import load_tokenizer
from moviegpt.train import callbacks as C
from moviegpt.train import card
from moviegpt.train import plan as planner
from moviegpt.train import trainer as T


@dataclass
class Prepared:
    """What a run trains and evaluates on, made once by prepare() and handed to the plan and the Trainer."""

    tok: object
    tok_source: str
    splits: movies.Splits
    train_ds: object  # packed blocks or padded films (text.batching); a stream with data.streaming
    val_ds: object | None
    test_ds: object  # padded films, one per row, by token type: held-out evaluation is per film
    val_films: object | None  # the validation films the same way (train.film_curve scores them as training goes)
    model: object = None  # the base model (prepare(..., model=False): none, for `moviegpt prepare`)
    model_source: str = ""


def prepare(cfg: Config, log=print, model: bool = True) -> Prepared:
    """Tokenizer, splits, datasets and (with `model`) the model, each loaded once."""
    tok, tok_source = load_tokenizer(cfg.model.tokenizer or cfg.model.name)
    splits = stream.splits(cfg) if cfg.data.streaming else movies.load_splits(cfg.data, cfg.seed)
    base, base_source = causal_lm.load_model(cfg.model, tok, cfg.seed) if model else (None, "")
    if base is not None:
        ctx = causal_lm.context_length(base)
        for key, value in (("text.max_length", cfg.text.max_length), ("text.block_size", cfg.text.block_size)) + (
            (("data.held_out_length", cfg.data.held_out_length),) if cfg.data.held_out_length else ()
        ):
            validate.need(value <= ctx, f"bad config value: {key}={value} exceeds the model's context of {ctx}")
    train_ds = train_dataset(cfg, splits, tok)
    val_ds = (
        tokens.tokenize(splits.validation, tok, cfg.text, desc="validation films") if len(splits.validation) else None
    )
    per_film = lambda films, what: tokens.scored(films, tok, cfg.text.template, cfg.scored_length, desc=what)
    test_ds = per_film(splits.test, "test films")  # held-out films end with their EOS in every recipe
    curve = cfg.train.film_curve and len(splits.validation)
    val_films = per_film(splits.validation, "validation films") if curve else None
    return Prepared(tok, tok_source, splits, train_ds, val_ds, test_ds, val_films, base, base_source)


def train_dataset(cfg: Config, splits: movies.Splits, tok):
    if cfg.data.streaming:  # packed blocks made as the Trainer reads them; nothing is loaded whole
        return tokens.tokenize_stream(splits.train, tok, cfg.text)
    ds = tokens.tokenize(splits.train, tok, cfg.text, desc="training films")
    validate.need(len(ds) != 0, f"the training split is too small to fill one block of {cfg.text.block_size} tokens")
    return ds


def resolve(cfg: Config, log=print) -> tuple[Config, Plan | None]:
    """The config that will run here: the model that can be had, and the plan for a budget."""
    cfg, plan, _ = _resolve(cfg, log)
    return cfg, plan


def _resolve(cfg: Config, log) -> tuple[Config, Plan | None, Prepared | None]:
    """choose, then plan a budget: from the cache, or by preparing the run and timing its step (the prepared run is
    returned, so nothing is loaded twice)."""
    cfg = causal_lm.choose(cfg)
    if not planner.needed(cfg):
        return cfg, None, None
    if (plan := planner.cached(cfg)) is not None:
        log(f"Plan for this machine (cached): {plan.reason}")
        return planner.apply(cfg, plan), plan, None
    prepared = prepare(cfg, log)
    return *planner.resolve(cfg, prepared, log), prepared


def run(cfg: Config, log=print) -> RunDir:
    """Train (or reuse, or resume) the run for this config; returns its directory."""
    T.check_args(cfg.train.trainer_args)  # before anything loads
    cfg, plan, prepared = _resolve(cfg, log)
    runs = prepare_runs_dir(Path(cfg.runs_dir))
    run = RunDir(validate.inside(runs / cfg.run_name, runs, "run directory"))
    if run.finished:
        log(f"Reusing finished run {run.path} (same resolved config).")
        return run
    if not is_main_process():  # torchrun / accelerate launch: rank 0 owns the run directory and its lock
        _train(cfg, plan, run, prepared, log=lambda m: None, main=False)
        return run
    with lock(run.path):  # a second process with the same config stops here, touching nothing
        if run.summary_json.exists():  # a summary whose model is gone: the run is trained again, and the old
            run.summary_json.replace(run.path / "summary.json.stale")  # summary kept aside, never mistaken for it
            log(f"{run.path}: its model is missing, so it is trained again (its old summary is summary.json.stale)")
        try:
            _train(cfg, plan, run, prepared, log)
        except UserError as e:
            if not isinstance(e, Interrupted) and {p.name for p in run.path.iterdir()} <= {".lock", "train.log"}:
                shutil.rmtree(run.path, ignore_errors=True)  # failed before writing anything: leave no trace
            raise
    return run


def run_apart(cfg: Config) -> None:
    """Train (or reuse) one run in a process of its own, so the peak memory it records (the resident set of its
    process) is its own: in one process, memory the allocator kept from an earlier run would count again. The child
    reports a failure in one line; this process then exits with the child's code. The child never outlives this
    process: if this one dies, the child stops as on Ctrl-C (a checkpoint is saved, so the run resumes)."""
    import multiprocessing

    child = multiprocessing.get_context("spawn").Process(target=_child, args=(cfg, os.getpid()))
    child.start()
    try:
        child.join()
    except BaseException:  # Ctrl-C or a stop here: the child, which got the same signal from the terminal, saves
        child.join(timeout=120)
        if child.is_alive():
            child.terminate()
        raise
    if child.exitcode != 0:
        raise SystemExit(child.exitcode if child.exitcode and child.exitcode > 0 else 1)


def _child(cfg: Config, parent: int) -> None:
    import contextlib
    import sys

    watch_parent(parent)
    with contextlib.redirect_stdout(sys.stderr):  # progress and logs on the terminal (stderr), never in a page
        code = reporting(lambda: run(cfg, log=lambda m: print(m, file=sys.stderr)))
    sys.exit(code)


def watch_parent(parent: int, every_s: float = 1.0) -> None:
    """SIGTERM to this process when `parent` is gone (it was killed, even with SIGKILL): a training run then stops
    at the end of its step and saves a checkpoint (callbacks.StopOnSignal); before training, it simply ends."""
    import signal
    import threading

    def watch():
        while os.getppid() == parent:
            time.sleep(every_s)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="moviegpt-parent-watch", daemon=True).start()


def is_main_process() -> bool:
    """Rank 0 of a torchrun / accelerate launch, or a plain single process (RANK is set by both launchers)."""
    return int(os.environ.get("RANK", "0")) == 0


def _train(cfg: Config, plan: Plan | None, run: RunDir, prepared: Prepared | None, log, main: bool = True) -> None:
    s = setup(cfg, plan, run, prepared or prepare(cfg, log), log, main)
    with PeakMemory() as memory:
        trainer, result = fit(cfg, s, run, log, main)
    tuned = save(cfg, s, trainer, run, main)
    if main:
        finish(cfg, s, tuned, trainer, result, run, log, memory.peak)


@dataclass
class Setup:
    """What setup made, for fit and finish."""

    tok: object
    splits: movies.Splits
    model: object
    train_ds: object
    val_ds: object
    test_ds: object
    val_films: object | None
    precision: str
    info: RunInfo
    base: HeldOut | None
    started: float  # time.time() when this session's setup began


def setup(cfg: Config, plan: Plan | None, run: RunDir, p: Prepared, log, main: bool) -> Setup:
    """The run's record (config.yaml: what will run) and the base model's held-out evaluation."""
    started = time.time()
    precision, why = resolve_precision(cfg.train.precision)
    val_ds = p.val_ds
    if val_ds is not None and cfg.train.eval_rows:  # the first eval_rows blocks, at every validation pass
        val_ds = val_ds.select(range(min(cfg.train.eval_rows, len(val_ds))))
    train_examples = None if cfg.data.streaming else len(p.train_ds)
    adapted = causal_lm.adapt(p.model, cfg)  # LoRA: the base model stays as it was (base evaluation below)
    info = RunInfo(
        model=p.model_source,
        model_choice=causal_lm.choice_note(cfg.model),
        parameters=causal_lm.count_parameters(p.model),
        trainable_parameters=causal_lm.count_parameters(adapted, trainable=True),
        tokenizer=p.tok_source,
        vocab_size=len(p.tok),
        context_length=causal_lm.context_length(p.model),
        precision=precision,
        precision_note=why,
        data=p.splits.counts,
        train_examples=train_examples,
        hardware=hardware(),
        versions=versions(),
        base_model=causal_lm.base_model_id(cfg.model),
        plan=plan,
        parent=parent_of(cfg),
        code=code_version(),
    )
    if main and not run.config_yaml.exists():
        save_config(cfg, run.config_yaml, to_dict(info))
    log(f"Run {run.path}: {p.model_source}; {p.splits.counts.used('train') or 'streamed'} training films; {precision}")
    base = run.base_eval()
    if base is None and main:
        base = evaluate.cached_perplexity(
            base_key(cfg, p.splits.test),
            lambda: evaluate.perplexity(p.model, p.test_ds, cfg.train.eval_batch_size, desc="held-out, base model"),
        )
        base.films_hash = movies.content_hash(p.splits.test)
        run.write_json(run.base_eval_json, base)
    if main:
        log(f"Held-out before training: loss {base.loss:.4f}, perplexity {base.perplexity:.2f}")
    return Setup(p.tok, p.splits, adapted, p.train_ds, val_ds, p.test_ds, p.val_films, precision, info, base, started)


def base_key(cfg: Config, films) -> dict:
    """What the base model's held-out evaluation depends on: the weights, the films and how they are written."""
    m = cfg.model
    weights = (
        [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in sorted(Path(m.name).glob("*.safetensors"))]
        if Path(m.name).is_dir()
        else str(causal_lm.assets.cached(m.name) or m.name)
    )
    return {
        "model": [m.name, m.tokenizer, m.n_layer, m.n_head, m.n_embd, m.n_positions, m.attn_implementation],
        "weights": weights,
        "seed": cfg.seed,
        "template": cfg.text.template,
        "max_length": cfg.scored_length,
        "films": movies.content_hash(films),
        "n_films": len(films),
        "by_token_type": 2,  # 2: per-film losses summed in float64, as their split by token type
    }


def parent_of(cfg: Config) -> Parent | None:
    if not cfg.model.parent:
        return None
    parent = RunDir(cfg.model.parent)
    return Parent(run=parent.name, path=str(parent.path), final_perplexity=parent.summary().final.perplexity)


def samples_callback(cfg: Config, s: Setup, metrics: C.MetricsLog) -> C.Samples:
    """Overviews for the first train.samples test titles at each validation pass (callbacks.Samples); in a planned run
    each pass's stop at their part of the budget (plan.SAMPLE_SHARE)."""
    films = s.splits.test.head(cfg.train.samples).to_dict("records")
    limit = s.info.plan.sample_seconds if s.info.plan else 0.0
    how = Sampling(seed=cfg.seed, max_new_tokens=cfg.train.sample_tokens, max_time=limit)
    return C.Samples(metrics, s.tok, films, cfg.text.template, how)


def fit(cfg: Config, s: Setup, run: RunDir, log, main: bool):
    """Trainer from the last complete checkpoint (if any) to max_steps or the end of the epochs."""
    if main:
        run.checkpoints.mkdir(exist_ok=True)
        run.clear_staging()
    base = s.model.get_base_model() if hasattr(s.model, "get_base_model") else s.model
    last = run.last_checkpoint(repair=main, model_config=base.config.to_dict(), max_steps=cfg.train.max_steps)
    offset = 0.0
    if main:  # drop log lines after the checkpoint (all of them when a kill came before the first one)
        step = json.loads((last / "trainer_state.json").read_text())["global_step"] if last else -1  # -1: a fresh start
        offset = run.rewind_metrics(step)  # logs its step-0 evaluation again
        if last:
            log(f"Resuming from {last} (step {step}).")
    peak, _ = mfu.peak(s.precision)  # the MFU in metrics.jsonl: moviegpt.core.mfu's rule over this peak
    flops = mfu.model_flops_per_token(s.model.config, sum(p.numel() for p in s.model.parameters()), cfg.text.seq_len())
    stop, metrics = C.StopOnSignal().install(), C.MetricsLog(run.metrics_jsonl, offset, flops, peak)
    earlier = [r for r in run.metrics() if r["kind"] == "films"]  # a resumed run's points so far
    curve = C.FilmCurve(metrics, s.val_films, cfg.train.film_curve, cfg.train.eval_batch_size, earlier)
    trainer = T.build(
        cfg,
        s.model,
        s.train_ds,
        run.checkpoints,
        s.precision,
        tokenizer=s.tok,
        eval_dataset=None if cfg.train.film_curve else s.val_ds,  # the film curve replaces Trainer's passes
        resuming=last is not None,
        callbacks=[metrics, stop, *C.tracking(run.path, cfg)]
        + ([curve] if s.val_films is not None else [])
        + ([C.SaveEvery(cfg.train.save_minutes)] if cfg.train.save_minutes else [])
        + ([samples_callback(cfg, s, metrics)] if cfg.train.samples and s.val_ds and not cfg.train.film_curve else [])
        + ([C.Deadline(s.info.plan.budget_minutes * 60 * planner.DEADLINE_FACTOR)] if s.info.plan else []),
    )
    try:
        result = trainer.train(resume_from_checkpoint=str(last) if last else None)
    except Exception as e:
        if not cfg.data.streaming or isinstance(e, UserError):
            raise
        raise UserError(f"reading {cfg.data.source} while streaming failed: {first_line(e)}") from None
    finally:
        stop.restore()
    if metrics.diverged:
        raise UserError(
            f"training diverged: {metrics.diverged}; lower train.learning_rate (the run is not marked finished)"
        )
    if stop.received and trainer.state.global_step < trainer.state.max_steps:
        raise Interrupted(
            f"{stop.received}: stopped at step {trainer.state.global_step} and saved "
            f"{run.checkpoints / f'checkpoint-{trainer.state.global_step}'}; rerun the same command to resume"
        )
    return trainer, result


def save(cfg: Config, s: Setup, trainer, run: RunDir, main: bool):
    """model/ as save_pretrained (safetensors, config, generation config, tokenizer); with LoRA the adapter goes
    to adapter/ and model/ holds the merged model, so pipeline("text-generation", model=run/model) works."""
    trainer.model.generation_config.update(**GENERATION_DEFAULTS)
    target = run.adapter_dir if cfg.train.lora else run.model_dir
    with T.saving(target):
        trainer.save_model(str(target))
    (target / "training_args.bin").unlink(missing_ok=True)  # a pickle; the run's config.yaml says it all
    tuned = causal_lm.merged(trainer.model)
    if main and cfg.train.lora:
        with T.saving(run.model_dir):
            tuned.save_pretrained(run.model_dir)
            s.tok.save_pretrained(run.model_dir)
    return tuned


def finish(cfg: Config, s: Setup, tuned, trainer, result, run: RunDir, log, peak_mb: float) -> None:
    """The fine-tuned model's held-out evaluation, the model's settings and card, and summary.json, last."""
    final = evaluate.perplexity(tuned, s.test_ds, cfg.train.eval_batch_size, desc="held-out, fine-tuned model")
    final.films_hash = movies.content_hash(s.splits.test)
    validate.need(
        math.isfinite(final.perplexity),
        f"training diverged: the held-out loss is {final.loss:.4g} and its "
        "perplexity not a finite number; lower train.learning_rate (the run is not marked finished)",
    )
    log(f"Held-out after training: loss {final.loss:.4f}, perplexity {final.perplexity:.2f}")
    settings = dict(template=cfg.text.template, max_length=cfg.text.max_length, splits=cfg.data.splits, seed=cfg.seed)
    settings |= {"data_source": cfg.data.source, "base_model": s.info.base_model}
    validate.write_atomic(run.model_dir / causal_lm.SETTINGS_FILE, json.dumps(settings, indent=2))
    runtime = result.metrics["train_runtime"]
    tokens_seen = int(trainer.state.num_input_tokens_seen)
    evals = [r for r in run.metrics() if r["kind"] == "eval"]
    summary = Summary(
        run=run.name,
        profile=cfg.profile,
        model=s.info.model,
        precision=s.precision,
        base=s.base,
        final=final,
        perplexity_ratio=final.perplexity / s.base.perplexity,
        last_eval_loss=evals[-1]["eval_loss"] if evals else None,
        data=s.splits.counts,
        train_examples=s.info.train_examples,
        steps=trainer.state.global_step,
        epochs=trainer.state.epoch or 0.0,
        tokens_seen=tokens_seen,
        train_runtime_s=runtime,
        tokens_per_second=tokens_seen / runtime if runtime else None,
        wall_time_s=time.time() - s.started,
        peak_memory_mb=peak_mb,
    )
    card.write(run.model_dir / "README.md", cfg, s.info, summary)
    run.write_json(run.summary_json, summary)  # last: its presence marks the run finished
