"""The Implementation chapter's facts and tables: the settings that applied, the run's files and model card, how a
budgeted run was sized, and where its training time went. Importing it loads no model library."""

from __future__ import annotations

import pandas as pd
import yaml

from moviegpt.book.words import numbers
from moviegpt.core.config import Config
from moviegpt.core.rundir import RunDir


def applied(cfg: Config) -> dict:
    """The settings that applied to a run: no place on disk, no section or key its other settings switch off."""
    d = cfg.to_dict()
    d.pop("runs_dir")
    if not cfg.train.lora:
        d.pop("lora")
    if cfg.model.name != "scratch":
        for k in ("n_layer", "n_head", "n_embd", "n_positions", "dropout"):
            d["model"].pop(k)
    if cfg.text.batching != "pack":
        d["text"].pop("block_size")
    if cfg.data.source == "bundled" or "/" not in cfg.data.source:
        d["data"].pop("hub_split")
    if cfg.train.max_steps > 0:
        d["train"].pop("epochs")
    if not cfg.data.streaming and "://" not in cfg.data.source and "/" not in cfg.data.source:
        d["data"].pop("timeout_s")  # remote reads only
    for section in ("data", "text", "model", "train"):
        d[section] = {k: v for k, v in d[section].items() if v not in (None, {}, [])}
    return d


class _Dumper(yaml.SafeDumper):
    """YAML as a person writes it: a text with newlines (the template) as a literal block."""


_Dumper.add_representer(
    str, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s, style="|" if "\n" in s else None)
)


def config_yaml(cfg: Config) -> str:
    return yaml.dump(applied(cfg), Dumper=_Dumper, sort_keys=False, allow_unicode=True)


def run_files(run: RunDir):
    """Every file of a run with its size, checkpoints folded to one line each."""
    rows = []
    for p in sorted(run.path.rglob("*")):
        rel = p.relative_to(run.path)
        folded = rel.parts[0] in ("checkpoints", "tensorboard") and len(rel.parts) > 2
        if p.is_file() and not folded and not p.name.startswith("."):
            rows.append((str(rel), p.stat().st_size))
        elif p.is_dir() and rel.parts[0] == "checkpoints" and len(rel.parts) == 2:
            rows.append((f"{rel}/", sum(f.stat().st_size for f in p.rglob("*") if f.is_file())))
    return numbers(pd.DataFrame(rows, columns=["file", "bytes"]).set_index("file"))


def card_data(run: RunDir) -> dict:
    """The model card's machine-readable part (what the hub's tooling reads)."""
    from huggingface_hub import ModelCard

    d = ModelCard.load(str(run.model_dir / "README.md")).data.to_dict()
    return {k: d.get(k) for k in ("base_model", "datasets", "license", "pipeline_tag", "tags")}
