"""The callbacks moviegpt's Trainer runs with: not losing work (a clean stop on a signal, saves on a timer), the
run's own log (metrics.jsonl, which stops a diverged run) and tracking, the validation films' curve (FilmCurve), the
step clock the benchmarks time steps with, and a planned run's deadline.
"""

from __future__ import annotations

import json
import math
import signal
import time
from pathlib import Path

import torch
from transformers import TrainerCallback

from moviegpt.core.config import Config
from moviegpt.core.hardware import synchronize


def tracking(run_dir: Path, cfg: Config) -> list[TrainerCallback]:
    """Tracking integrations that write into the run directory."""
    if "tensorboard" not in [r.strip() for r in cfg.train.report_to.split(",")]:
        return []
    from torch.utils.tensorboard import SummaryWriter
    from transformers.integrations import TensorBoardCallback

    return [TensorBoardCallback(tb_writer=SummaryWriter(log_dir=str(run_dir / "tensorboard")))]


class StopOnSignal(TrainerCallback):
    """SIGTERM / Ctrl-C: finish the current step, save a checkpoint, stop. A second signal stops at once."""

    def __init__(self):
        self.received: str | None = None
        self.previous = {}

    def install(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def restore(self):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame):
        if self.received:  # second signal: give up on the clean stop
            self.restore()
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name

    def on_step_end(self, args, state, control, **kw):
        if self.received:
            control.should_save = True  # Trainer saves (atomically, above) and then stops
            control.should_training_stop = True


class SaveEvery(TrainerCallback):
    """Time-driven checkpoints (train.save_minutes): a kill loses at most that much training on any hardware,
    while the share of time spent saving stays bounded by save time / interval (benchmarks/checkpoint_cost.py)."""

    def __init__(self, minutes: float):
        self.seconds, self.last = minutes * 60, time.time()

    def on_step_end(self, args, state, control, **kw):
        if time.time() - self.last >= self.seconds:
            control.should_save = True

    def on_save(self, args, state, control, **kw):
        self.last = time.time()


class MetricsLog(TrainerCallback):
    """Append every Trainer log to metrics.jsonl with step, epoch, tokens seen and wall time; stop the run
    at the first loss that is not a finite number (a diverged run is never marked finished)."""

    def __init__(self, path: Path, wall_offset: float = 0.0, flops_per_token: float = 0.0, peak: float | None = None):
        self.path, self.offset, self.t0 = path, wall_offset, time.time()
        self.diverged: str | None = None
        self.flops_per_token, self.peak = flops_per_token, peak  # moviegpt.core.mfu: the run's rule and peak
        self.since: tuple[int, float] | None = None  # tokens seen and training seconds at the last training log
        self.not_training = 0.0  # seconds of validation and saving since then

    def _throughput(self, tokens: int, now: float) -> dict:
        """tokens/s and MFU over the interval since the last training log (validation and saves left out);
        the first log of a run (or of a resumed one) has no interval."""
        since, self.since, spent = self.since, (tokens, now), self.not_training
        self.not_training = 0.0
        if since is None or tokens <= since[0]:
            return {}
        from moviegpt.core import mfu

        rate, util = mfu.utilisation(tokens - since[0], now - since[1] - spent, self.flops_per_token, self.peak)
        return {"tokens_per_second": rate} | ({"mfu": util, "mfu_peak_flops": self.peak} if util is not None else {})

    def on_train_begin(self, args, state, control, **kw):
        self.since, self.not_training = (int(state.num_input_tokens_seen), time.time()), 0.0

    def on_log(self, args, state, control, logs=None, **kw):
        if not logs:
            return
        bad = [k for k in ("loss", "eval_loss", "grad_norm") if k in logs and not math.isfinite(float(logs[k]))]
        if bad:
            self.diverged = f"{bad[0]} became {logs[bad[0]]} at step {state.global_step}"
            control.should_training_stop = True
            return
        if not state.is_world_process_zero:
            return
        kind = (
            "eval"
            if "eval_loss" in logs
            else "summary"
            if "train_loss" in logs
            else "save"
            if "save_seconds" in logs
            else "train"
        )
        if kind == "train" and "loss" in logs:
            logs.update(self._throughput(int(state.num_input_tokens_seen), time.time()))  # TensorBoard sees it too
        elif kind in ("eval", "save"):
            self.not_training += float(logs.get("eval_runtime", logs.get("save_seconds", 0.0)))
        rec = {
            "kind": kind,
            "step": state.global_step,
            "epoch": state.epoch,
            "tokens_seen": int(state.num_input_tokens_seen),
            "wall_time": self.offset + time.time() - self.t0,
            **logs,
        }
        if "eval_loss" in logs:  # None where exp overflows (a loss above ~700 nats: the run is far off)
            rec["eval_perplexity"] = math.exp(logs["eval_loss"]) if logs["eval_loss"] < 700 else None
        self.write(rec)

    def write(self, rec: dict) -> None:
        """One line appended, never through a link planted at the log's path (O_NOFOLLOW)."""
        import os

        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "a") as fh:
            fh.write(json.dumps(rec) + "\n")


class Samples(TrainerCallback):
    """At each validation pass (step 0 included), overviews for a few fixed test titles, sampled with a fixed
    seed, as a `samples` row of metrics.jsonl with the seconds they took (left out of tokens/s, counted in the
    run's time spent): what the model writes as it learns. The validation pass that calls it puts the random state
    back (trainer.CountOnDevice._evaluate), so the run trains the same with or without them."""

    def __init__(self, log: MetricsLog, tok, films: list[dict], template: str, how):
        self.log, self.tok, self.films, self.template, self.how = log, tok, films, template, how  # a generate.Sampling

    def on_evaluate(self, args, state, control, model=None, **kw):
        from moviegpt.eval.generate import generate_overviews

        if not state.is_world_process_zero or model is None:
            return
        t0 = time.perf_counter()
        try:  # sampling puts the model in eval mode; training goes on in train mode
            gens = generate_overviews(
                model, self.tok, self.films, self.template, how=self.how, batch_size=len(self.films)
            )
        finally:
            model.train()
        seconds = time.perf_counter() - t0
        self.log.not_training += seconds
        samples = [{"title": g["title"], "text": g["text"], "ended_with_eos": g["ended_with_eos"]} for g in gens]
        tokens = int(state.num_input_tokens_seen)
        self.log.write(
            {
                "kind": "samples",
                "step": state.global_step,
                "tokens_seen": tokens,
                "samples_seconds": seconds,
                "samples": samples,
            }
        )


class FilmCurve(TrainerCallback):
    """train.film_curve: every validation film scored on its own (summed NLL and targets, split by token type), before
    the first step and at the given fractions of the run's steps, as a `films` row of metrics.jsonl with the tokens
    seen and the seconds spent training so far (these passes left out), so that one curve reads against steps,
    tokens or time. A point is scored at the end of its step and written at that step's log (which it asks for),
    where the step's tokens have been counted."""

    def __init__(self, log: MetricsLog, films, fractions: list, batch_size: int, earlier: list[dict]):
        self.log, self.films, self.fractions, self.batch_size = log, films, fractions, batch_size
        self.curve_s = earlier[-1]["curve_seconds"] if earlier else 0.0  # a resumed run goes on counting
        self.done = {r["step"] for r in earlier}
        self.pending: dict | None = None

    def points(self, max_steps: int) -> set[int]:
        return {round(f * max_steps) for f in self.fractions}

    def on_train_begin(self, args, state, control, model=None, **kw):
        if state.global_step == 0 and 0 in self.points(state.max_steps) and 0 not in self.done:
            self._score(state, model)
            self._write(state)

    def on_step_end(self, args, state, control, model=None, **kw):
        if state.global_step in self.points(state.max_steps) and state.global_step not in self.done:
            self._score(state, model)
            control.should_log = True

    def on_log(self, args, state, control, logs=None, **kw):
        if self.pending is not None and state.global_step == self.pending["step"]:
            self._write(state)

    def _score(self, state, model) -> None:
        from moviegpt.data.tokens import TOKEN_TYPES
        from moviegpt.eval.evaluate import film_nll

        started = time.perf_counter()
        try:
            nll, n, type_nll, type_n = film_nll(model, self.films, self.batch_size, "validation films")
        finally:
            model.train()
        seconds = time.perf_counter() - started
        self.curve_s += seconds
        self.log.not_training += seconds
        self.done.add(state.global_step)
        self.pending = {
            "kind": "films",
            "step": state.global_step,
            "film_nll": [round(x, 4) for x in nll.tolist()],
            "film_tokens": n.tolist(),
            "type_nll": {k: [round(x, 4) for x in type_nll[:, j].tolist()] for j, k in enumerate(TOKEN_TYPES)},
            "type_tokens": {k: type_n[:, j].tolist() for j, k in enumerate(TOKEN_TYPES)},
        }

    def _write(self, state) -> None:
        if not state.is_world_process_zero:
            return
        wall = self.log.offset + time.time() - self.log.t0
        tokens = int(state.num_input_tokens_seen)
        rec = {"step": self.pending.pop("step"), "kind": self.pending.pop("kind"), "tokens_seen": tokens}
        rec |= {"wall_time": wall, "train_seconds": wall - self.curve_s, "curve_seconds": self.curve_s}
        self.log.write(rec | self.pending)
        self.pending = None


class StepClock(TrainerCallback):
    """Start and end time of every optimizer step, for the benchmarks. On a GPU a step
    is queued, not done, when Trainer returns from it, and waiting for it would stop the queueing being
    measured: CUDA events mark each step's start and end in the GPU's own timeline instead, read once training
    ends."""

    def __init__(self):
        self.starts: list[float] = []
        self.ends: list[float] = []
        self._events: list = []

    def on_train_begin(self, args, state, control, **kw):
        self.starts, self.ends, self._events = [], [], []

    def _mark(self, which: str) -> None:
        if torch.cuda.is_available():
            self._events.append((which, torch.cuda.Event(enable_timing=True)))
            self._events[-1][1].record()
        else:
            getattr(self, which).append(time.perf_counter())

    def on_step_begin(self, args, state, control, **kw):
        self._mark("starts")

    def on_step_end(self, args, state, control, **kw):
        self._mark("ends")

    def on_train_end(self, args, state, control, **kw):
        if self._events:
            synchronize()
            now, last = time.perf_counter(), self._events[-1][1]
            for which, e in self._events:  # elapsed_time: milliseconds
                getattr(self, which).append(now - e.elapsed_time(last) / 1e3)


class Deadline(TrainerCallback):
    """A planned run still training at `seconds` (its budget times plan.DEADLINE_FACTOR) stops at the end of its
    step, validating and saving as at any last step, through Trainer's public control. The plan sized the run to
    end well before this: it is a bound for a machine that slowed down, not the plan."""

    def __init__(self, seconds: float):
        self.seconds, self.began, self.stopped_at = seconds, None, None

    def on_train_begin(self, args, state, control, **kw):
        self.began = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        if state.global_step < state.max_steps and time.perf_counter() - self.began > self.seconds:
            control.should_training_stop = control.should_evaluate = control.should_save = True
            self.stopped_at = state.global_step
