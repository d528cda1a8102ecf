"""The run directory: its files, typed access to them (records: moviegpt.core.artifacts), and its lifecycle.

runs/<profile>-<config hash>/
    config.yaml       the resolved settings, and under `resolved` a RunInfo: what actually ran
    metrics.jsonl     every Trainer log: step, epoch, loss or eval_loss, learning rate, tokens seen, wall time
    base_eval.json    a HeldOut: test loss/perplexity of the model before training
    summary.json      a Summary, written last: its presence marks the run finished
    eval.json         an Evaluation (moviegpt.eval.evaluate), written when asked for
    model/            save_pretrained: safetensors, config, generation config, tokenizer, model card (README.md)
    adapter/          LoRA runs: the peft adapter (safetensors, adapter_config.json)
    checkpoints/      Trainer checkpoints, each written under tmp-checkpoint-N/ and renamed when complete

Train writes the records; evaluate, report, the CLI and the book read them through RunDir, by typed name
(`run.summary().final.perplexity`), never by string keys. Every JSON file is strict (no NaN) and written
atomically; a damaged one is named in one line with what to do. A process holds the run's lock while it
trains; a damaged checkpoint is set aside and the one before it resumed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import sys
from pathlib import Path

from moviegpt.core import validate
from moviegpt.core.artifacts import Evaluation, HeldOut, RunInfo, Summary, from_dict, to_dict
from moviegpt.core.errors import UserError

# ------------------------------------------------------------------ the directory


class RunDir:
    """One run directory and typed access to what is in it."""

    def __init__(self, path):
        self.path = Path(path)

    def __repr__(self):
        return f"RunDir({str(self.path)!r})"

    def __str__(self):
        return str(self.path)

    def __fspath__(self):  # a RunDir works wherever a path does: open(run / "summary.json"), Path(run)
        return str(self.path)

    def __truediv__(self, other):
        return self.path / other

    def __eq__(self, other):
        return isinstance(other, RunDir) and self.path == other.path

    def __hash__(self):
        return hash(self.path)

    name = property(lambda self: self.path.name)
    config_yaml = property(lambda self: self.path / "config.yaml")
    metrics_jsonl = property(lambda self: self.path / "metrics.jsonl")
    base_eval_json = property(lambda self: self.path / "base_eval.json")
    summary_json = property(lambda self: self.path / "summary.json")
    eval_json = property(lambda self: self.path / "eval.json")
    model_dir = property(lambda self: self.path / "model")
    adapter_dir = property(lambda self: self.path / "adapter")
    checkpoints = property(lambda self: self.path / "checkpoints")
    embeddings = property(lambda self: self.path / "embeddings.npy")

    def check_kinds(self) -> None:
        """Each path the run writes is of the kind it writes (a folder or a file), and none is a link (a planted
        link would have moviegpt write where it points, outside the run), or one line naming it."""
        folders = (self.checkpoints, self.model_dir, self.adapter_dir)
        files = (self.path / ".lock", self.config_yaml, self.metrics_jsonl, self.summary_json, self.eval_json)
        files += (self.base_eval_json, self.path / "score.json")
        if self.path.is_symlink():
            raise UserError(f"{self.path} is a link; a run's folder must be a folder of its own (nothing was changed)")
        for p, want in [*((p, True) for p in folders), *((p, False) for p in files)]:
            if p.is_symlink():
                raise UserError(
                    f"{p} is a link; moviegpt does not write through links: move it away (nothing was changed)"
                )
            if p.exists() and p.is_dir() != want:
                kind = "a folder" if want else "a file"
                raise UserError(f"{p} should be {kind} and is not; move it away (nothing was changed)")

    @property
    def finished(self) -> bool:
        """summary.json is written last, so its presence marks a finished run, as long as the model it finished is
        still there (a run whose model/ was deleted is trained again, not reused)."""
        model = self.model_dir / "config.json"
        weights = any(self.model_dir.glob("*.safetensors")) if self.model_dir.is_dir() else False
        return self.summary_json.is_file() and model.is_file() and weights

    def _record(self, cls, path: Path, data, fix: str):
        try:
            return from_dict(cls, data)
        except (ValueError, TypeError) as e:
            raise UserError(f"{path} does not hold a moviegpt {cls.__name__} ({e}); {fix}") from None

    def summary(self) -> Summary:
        fix = "delete it and rerun the same `moviegpt train` to finish the run again (checkpoints are kept)"
        return self._record(Summary, self.summary_json, validate.read_json(self.summary_json, "run summary", fix), fix)

    def settings(self) -> dict:
        """config.yaml as written (the settings and `resolved`)."""
        from moviegpt.core.settings import read_yaml

        return read_yaml(self.config_yaml)

    def info(self) -> RunInfo:
        fix = "the run directory was made by another version or damaged; train it again"
        return self._record(RunInfo, self.config_yaml, self.settings().get("resolved"), fix)

    def base_eval(self) -> HeldOut | None:
        if not self.base_eval_json.exists():
            return None
        try:
            return from_dict(HeldOut, validate.read_json(self.base_eval_json, "base evaluation", ""))
        except (UserError, ValueError):
            return None  # damaged: it is recomputed

    def evaluation(self) -> Evaluation | None:
        """eval.json, or None when it is missing, damaged or of another version (it is then recomputed)."""
        if not self.eval_json.exists():
            return None
        try:
            ev = from_dict(Evaluation, validate.read_json(self.eval_json, "evaluation", ""))
        except (UserError, ValueError, TypeError):
            return None
        return ev

    def write_json(self, path: Path, record) -> None:
        validate.write_atomic(
            path, validate.dumps(to_dict(record) if dataclasses.is_dataclass(record) else record, indent=2)
        )

    # -------------------------------------------------------------- metrics.jsonl

    def metrics(self) -> list[dict]:
        """Every complete log line; a line cut short by a kill (the last) is skipped."""
        if not self.metrics_jsonl.exists():
            return []
        out = []
        for line in self.metrics_jsonl.read_text(errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and isinstance(rec.get("step"), int) and not isinstance(rec["step"], bool):
                out.append(rec)  # a line whose step is not a number is not one moviegpt wrote: skipped
        return out

    def time_spent(self) -> dict:
        """Where a finished run's training time went, from metrics.jsonl and its plan: validation passes
        (Trainer's eval_runtime, step 0 included) and the samples drawn at each (samples_seconds), checkpoints
        (save_seconds), the planner's estimate before the first step, and their share of train_runtime."""
        m = self.metrics()
        runtime = self.summary().train_runtime_s
        evals, saves = [r for r in m if r["kind"] == "eval"], [r for r in m if r["kind"] == "save"]
        validation = sum(r.get("eval_runtime", 0.0) for r in evals)
        saving = sum(r["save_seconds"] for r in saves)
        sampling = sum(r["samples_seconds"] for r in m if r["kind"] == "samples")
        plan = self.info().plan
        probe = plan.estimate_seconds if plan else 0.0
        return {
            "train_runtime_s": runtime,
            "validation_s": validation,
            "passes": len(evals),
            "save_s": saving,
            "saves": len(saves),
            "estimate_s": probe,
            "samples_s": sampling,
            "overhead_share": (validation + saving + probe + sampling) / runtime,
        }

    def rewind_metrics(self, step: int) -> float:
        """On resume, keep log lines up to the checkpoint's step (later ones will be logged again), drop a partial
        line; returns the wall time logged at that point."""
        kept = [r for r in self.metrics() if r["step"] <= step]
        validate.write_atomic(self.metrics_jsonl, "".join(json.dumps(r) + "\n" for r in kept))
        return kept[-1].get("wall_time", 0.0) if kept else 0.0

    # -------------------------------------------------------------- checkpoints

    def last_checkpoint(self, repair: bool = True, model_config: dict | None = None, max_steps: int = 0) -> Path | None:
        """The newest complete checkpoint of this model. One that lacks its weights or a readable
        trainer_state.json (a disk that filled, a copy cut short) is skipped for the one before it, and with
        `repair` (the main process only) renamed damaged-checkpoint-N, kept for inspection; one whose config.json
        gives another shape than `model_config` (something else put it there) is renamed mismatched-checkpoint-N."""
        if not self.checkpoints.is_dir():
            return None
        found = []
        for p in self.checkpoints.glob("checkpoint-*"):
            if p.is_dir() and p.name.split("-")[-1].isdigit():
                found.append((int(p.name.split("-")[-1]), p))
        for n, p in sorted(found, reverse=True):
            ok, other = _complete(p, n, max_steps), _other_shape(p, model_config)
            if ok and other is None:
                return p
            if repair:
                p.rename(p.with_name(f"{'damaged' if not ok else 'mismatched'}-{p.name}"))
                if ok:
                    print(f"moviegpt: set aside {p.name} as mismatched-{p.name}: it holds {other}", file=sys.stderr)
        return None

    def clear_staging(self) -> None:
        """Remove checkpoints a killed process left half-written (never visible under their final name)."""
        for p in self.checkpoints.glob("tmp-checkpoint-*"):
            shutil.rmtree(p, ignore_errors=True)


def _complete(ckpt: Path, step: int, max_steps: int = 0) -> bool:
    """Weights, and a trainer_state.json whose global step is the one in the folder's name and within the run (a
    checkpoint claiming step 10**9 would otherwise mark the run finished at once)."""
    weights = any(
        (ckpt / n).is_file() and (ckpt / n).stat().st_size > 0
        for n in ("model.safetensors", "adapter_model.safetensors", "model.safetensors.index.json")
    )
    try:
        state = validate.read_small_json(ckpt / "trainer_state.json", 64 << 20)
        done = state.get("global_step")
        return weights and isinstance(done, int) and done == step and (max_steps <= 0 or 0 <= done <= max_steps)
    except (OSError, ValueError, AttributeError):
        return False


SHAPE_KEYS = ("model_type", "vocab_size", "n_embd", "n_layer", "n_head", "hidden_size", "num_hidden_layers")


def _other_shape(ckpt: Path, model_config: dict | None) -> str | None:
    """What differs between a checkpoint's config.json and the run's model (None: nothing, or nothing to compare)."""
    if model_config is None or not (ckpt / "config.json").is_file():
        return None
    try:
        saved = json.loads((ckpt / "config.json").read_text())
    except (OSError, ValueError):
        return "an unreadable config.json"
    if not isinstance(saved, dict):
        return "a config.json that is not a mapping"
    diff = [k for k in SHAPE_KEYS if k in saved and k in model_config and saved[k] != model_config[k]]
    return f"another model ({', '.join(f'{k} {saved[k]} not {model_config[k]}' for k in diff)})" if diff else None


def prepare_runs_dir(runs_dir: Path) -> Path:
    """runs_dir exists as a folder we can write, or one line saying why not."""
    return validate.writable_folder(Path(runs_dir), "runs_dir", "set runs_dir to a folder you can write")


@contextlib.contextmanager
def lock(path: Path):
    """One process per run directory: a second start with the same config stops here, touching nothing."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError(f"{path} is a file where the run's folder belongs; move it away") from None
    RunDir(path).check_kinds()
    fd = os.open(path / ".lock", os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"run {path} is in progress in another process; wait for it or stop it") from None
        yield
