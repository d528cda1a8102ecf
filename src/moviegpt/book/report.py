"""The report stage: the numbers and tables the book's chapters show, computed from the data and the runs' typed
artifacts (moviegpt.core.artifacts), each compared number with its 95% interval (moviegpt.core.stats).

Numbers and tables only: sentences live in the chapters, figures in moviegpt.book.plots, training the book's runs in
moviegpt.book.arms. Importing this module loads neither torch nor transformers and changes no global state; the few
functions that need a tokenizer or a model (marked) import them when called.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import yaml

from moviegpt.core import stats
from moviegpt.core.artifacts import SPLITS
from moviegpt.core.artifacts import Evaluation, code_version, describe_machine, eval_settings
from moviegpt.core.config import Config
from moviegpt.core.rundir import RunDir
from moviegpt.core.settings import load_config, load_run_config
from moviegpt.data import movies
from moviegpt.model.tokenizer import load_tokenizer

MODELS = ("base", "fine-tuned")
GPT2_SIZES = {
    "gpt2_parameters": 124_439_808,
    "gpt2_medium_parameters": 354_823_168,  # GPT2LMHeadModel
    "gpt2_large_parameters": 774_030_080,
}  # parameter counts
ORIGINAL = "GPT-2 Fine-Tuning on Movie Dataset: Condensed Report"  # the report this book reproduces
DATASET_URL = "https://huggingface.co/datasets/wykonos/movies"


def run_config(run: RunDir) -> Config:
    return load_run_config(run.path)


def evaluation(run: RunDir) -> Evaluation:
    """The run's eval.json; computed (with a model, so torch is imported) only when missing or out of date."""
    ev = run.evaluation()
    if ev is not None and ev.settings == eval_settings():
        return ev
    from moviegpt.eval import evaluate

    return evaluate.evaluate_run(run.path, log=lambda m: None)


def metrics_log(run: RunDir) -> pd.DataFrame:
    return pd.DataFrame(run.metrics())


def texts(df: pd.DataFrame):
    """A table of whole texts: nothing cut, newlines kept, left-aligned, no index column."""
    return (
        df.style.hide(axis="index")
        .format(na_rep="", escape="html")  # generated text is data, never markup
        .set_properties(**{"white-space": "pre-wrap", "text-align": "left", "vertical-align": "top"})
        .set_table_styles([{"selector": "th", "props": [("text-align", "left")]}])
    )


def numbers(df: pd.DataFrame, digits: int = 2):
    """A table of numbers with thousands separators."""
    return df.style.format(precision=digits, thousands=",", na_rep="", escape="html")


# ---------------------------------------------------------------- what ran, and the report it reproduces


def held_out(run: RunDir) -> dict[str, stats.Interval]:
    """Held-out perplexity before and after, and after/before, with bootstrap intervals over the test films."""
    s = run.summary()
    b, f = s.base, s.final
    film_ppl = lambda h: np.array(h.film_nll) / np.maximum(np.array(h.film_tokens), 1)
    return {
        "before": stats.perplexity(b.film_nll, b.film_tokens),
        "after": stats.perplexity(f.film_nll, f.film_tokens),
        "ratio": stats.perplexity_ratio(b.film_nll, b.film_tokens, f.film_nll, f.film_tokens),
        "improved": stats.share(film_ppl(f) < film_ppl(b)),
    }


def machine(run: RunDir) -> str:
    return describe_machine(run.info().hardware)


def headline(run: RunDir) -> dict:
    """The introduction's numbers: what ran, on what, for how long, and what came of it."""
    s, info, cfg = run.summary(), run.info(), run_config(run)
    p, iv = info.plan, held_out(run)
    films, pool = s.data.used("train") or 0, info.data.splits["train"].available or 0  # data.max_train_rows: the first
    return {
        "profile": cfg.profile,
        "model": info.model.split(" (")[0],
        "model_full": info.model,
        "model_why": model_why(cfg, info.model),
        "model_choice": info.model_choice,
        "source": cfg.data.source,
        "films_available": info.data.rows_out or 0,
        "train_films": s.data.used("train") or 0,
        "train_pool": f"the {films:,} training films"
        if films >= pool
        else f"the first {films:,} of {pool:,} training films",
        "test_films": s.final.films,
        "test_tokens": s.final.tokens,
        "steps": s.steps,
        "tokens_trained": s.tokens_seen,
        "epochs": s.epochs,
        "machine": machine(run),
        "precision": info.precision,
        "train_minutes": s.train_runtime_s / 60,
        "minutes": s.wall_time_s / 60,
        "tok_s": s.tokens_per_second or 0.0,
        "ppl_before": s.base.perplexity,
        "ppl_after": s.final.perplexity,
        "ppl_before_ci": f"{iv['before']:,.2f}",
        "ppl_after_ci": f"{iv['after']:,.2f}",
        "ratio_ci": f"{iv['ratio']:.2f}",
        "ratio": iv["ratio"].value,
        "improved_films": round(iv["improved"].value * iv["improved"].n),
        "planned": p is not None,
        "budget": p.budget_minutes if p else 0.0,
        "plan_reason": p.reason if p else "a fixed step count (no budget)",
        "resamples": stats.RESAMPLES,
        "original": ORIGINAL,
        "wykonos_rows": movies.WYKONOS_ROWS,
        "code_note": code_note(info.code),
        **original_recipe(),
    }


def code_note(made_by: dict | None) -> str:
    """Whether the run was made by the code building the book (artifacts.code_version), in a sentence."""
    now = code_version()
    if made_by is None:
        return (
            f"The run does not record the code that made it (it predates that record); this build's code is "
            f"moviegpt {now['version']}, source {now['source']}."
        )
    if made_by.get("source") == now["source"]:
        return f"The run was made by the code that built this book (moviegpt {now['version']}, source {now['source']})."
    return (
        f"The run was made by other code (moviegpt {made_by.get('version')}, source {made_by.get('source')}) "
        f"and reused by this build (moviegpt {now['version']}, source {now['source']}), because its settings "
        "are the same; delete its folder to retrain it with this code."
    )


def model_why(cfg: Config, model: str) -> str:
    """Why this model ran, in one sentence, from the run's config."""
    if cfg.model.requested:
        source = model.split("), ", 1)[-1] if "), " in model else model
        return (
            f"It stands in for {cfg.model.requested}, whose weights this machine could not reach (no Hugging Face "
            f"hub, nothing in the local cache); it comes {source}."
        )
    return f"The profile asks for it ({cfg.model.name})."


def original_recipe() -> dict:
    """The original report's recipe as configs/seed.yaml states it."""
    seed = load_config("seed")
    return {
        "orig_epochs": seed.train.epochs,
        "orig_batch": seed.train.batch_size,
        "orig_length": seed.text.max_length,
        "orig_batching": seed.text.batching,
        "orig_lr": seed.train.learning_rate,
        "orig_precision": seed.train.precision,
        "orig_scheduler": seed.train.lr_scheduler,
    }


def provenance(run: RunDir) -> pd.DataFrame:
    """Everything that produced the book's numbers, read from the run's config.yaml."""
    c, r = run.settings(), run.info()
    rows = {
        "profile": c["profile"],
        "run directory": f"runs/{run.name}",
        "model": r.model,
        "parameters (trained)": f"{r.parameters:,} ({r.trainable_parameters or r.parameters:,})",
        "tokenizer": r.tokenizer,
        "precision": r.precision_note,
        "data source": c["data"]["source"],
        "films (in / after cleaning)": f"{r.data.rows_in or 0:,} / {r.data.rows_out or 0:,}",
        "films used (train / validation / test)": " / ".join(f"{r.data.used(s) or 0:,}" for s in SPLITS),
        "plan": r.plan.reason if r.plan else "none: a fixed step count",
        "hardware": machine(run),
        "versions": ", ".join(f"{k} {v}" for k, v in r.versions.items()),
    }
    return texts(pd.DataFrame({"setting": list(rows), "value": list(rows.values())}))


# ---------------------------------------------------------------- dataset and methodology chapters


def cleaned_films(cfg: Config) -> tuple[pd.DataFrame, dict]:
    """All films of the run's source after cleaning (before any cap), with the cleaning counts."""
    return movies.load_clean(cfg.data)


def training_films(cfg: Config) -> pd.DataFrame:
    """The training films the run used (same split, shuffle and cap)."""
    return movies.load_splits(cfg.data, cfg.seed).train


def genre_counts(films: pd.DataFrame) -> pd.Series:
    return films["genres"].explode().dropna().value_counts()


def dataset_facts(cfg: Config, films: pd.DataFrame, counts: dict, lengths: np.ndarray) -> dict:
    genres, limit = genre_counts(films), original_recipe()["orig_length"]
    return {
        "source": cfg.data.source,
        "rows_in": counts["rows_in"],
        "rows_out": counts["rows_out"],
        "dropped": counts["rows_in"] - counts["rows_out"],
        "median_len": float(np.median(lengths)),
        "share_over": float((lengths > limit).mean()),
        "limit": limit,
        "n_genres": len(genres),
        "top_genre": genres.index[0] if len(genres) else "none",
    }


def cleaning_table(counts: dict):
    rows = [("rows in", counts["rows_in"])] + [
        (f"dropped: {k.replace('_', ' ')}", v) for k, v in counts["dropped"].items()
    ]
    return numbers(pd.DataFrame(rows + [("rows out", counts["rows_out"])], columns=["step", "films"]).set_index("step"))


def split_table(run: RunDir):
    return numbers(pd.DataFrame({k: v.__dict__ for k, v in run.info().data.splits.items()}).T.rename_axis("split"))


def overview_lengths(films: pd.DataFrame) -> np.ndarray:
    """Overview length in GPT-2 tokens (the shipped GPT-2 tokenizer, whatever model ran). Loads a tokenizer."""

    tok, _ = load_tokenizer("gpt2-bundled")
    return np.array([len(ids) for ids in tok(films["overview"].tolist())["input_ids"]])


def example_rows(films: pd.DataFrame, n: int = 3):
    out = films[["title", "year", "genres", "overview"]].head(n).copy()
    out["genres"] = out["genres"].map(", ".join)
    out["year"] = out["year"].map(lambda y: "" if pd.isna(y) else str(int(y)))
    return texts(out)


def example_encoding(cfg: Config, film: dict) -> dict:
    """One film as the model sees it: text (with EOS), token ids, and the tokens they stand for. Loads a tokenizer."""
    from moviegpt.data import tokens

    tok, _ = load_tokenizer(cfg.model.tokenizer or cfg.model.name)
    text = tokens.format_film(film, cfg.text.template) + tok.eos_token
    ids = tok(text)["input_ids"]
    return {"text": text, "ids": ids, "pieces": tok.convert_ids_to_tokens(ids), "eos_id": tok.eos_token_id}


def batching_comparison(cfg: Config, films: pd.DataFrame) -> dict:
    """The original recipe's padding (configs/seed.yaml's length) against this run's packing, on the training films
    that ran, with the run's tokenizer. Loads a tokenizer."""
    from moviegpt.data import tokens

    tok, _ = load_tokenizer(cfg.model.tokenizer or cfg.model.name)
    lengths = tokens.token_lengths(films, tok, cfg.text.template)
    return tokens.batching_stats(lengths, original_recipe()["orig_length"], cfg.text.block_size)


def method_facts(cfg: Config, example: dict, stats_: dict) -> dict:
    return {
        "template": cfg.text.template.replace("\n", "\\n"),
        "n_ids": len(example["ids"]),
        "eos_id": example["eos_id"],
        "block_size": cfg.text.block_size,
        "films": stats_["films"],
        "run_max_length": cfg.text.max_length,
        "pad_share": stats_["pad"]["padding_share"],
        "truncated": stats_["pad"]["truncated_tokens"],
        "truncated_films": stats_["pad"]["truncated_films"],
        "dropped_tail": stats_["pack"]["dropped_tail_tokens"],
        "batching": cfg.text.batching,
        **original_recipe(),
    }


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


def full_recipe_facts() -> dict:
    full = load_config("full")
    return {
        "full_tokens_per_step": full.tokens_per_step,
        "full_batch": full.train.batch_size,
        "full_accum": full.train.grad_accum,
        "full_block": full.text.block_size,
    }
