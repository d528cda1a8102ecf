"""The report stage: the numbers and tables the book's chapters show, computed from the data and the runs'
typed artifacts (moviegpt.artifacts). Data only: sentences live in the chapters, figures in moviegpt.plots,
and importing this module changes no global state.
"""
from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from moviegpt import data, evaluate, generate, model as model_stage, tokens, train
from moviegpt.artifacts import Evaluation
from moviegpt.config import Config
from moviegpt.errors import UserError
from moviegpt.rundir import RunDir
from moviegpt.settings import load_config, load_run_config

DEFAULT_PROFILE = "demo"  # the offline profile the book shows unless MOVIEGPT_PROFILE says otherwise
LORA_ARM = ["train.lora=true", "train.learning_rate=1.0e-3"]  # the book's LoRA run: the main run's profile and budget,
                                                              # adapters only, with the larger step LoRA needs
GPT2_SIZES = {"gpt2_parameters": 124_439_808, "gpt2_medium_parameters": 354_823_168,  # GPT2LMHeadModel
              "gpt2_large_parameters": 774_030_080}                                     # parameter counts
MODELS = evaluate.MODELS


def project_root(start: Path | None = None) -> Path:
    """The book's project: the nearest folder holding _toc.yml, from the current one (the book's chapters
    run in book/, the CLI in the repository)."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").is_file() and (folder / "_config.yml").is_file():
            return folder
    raise UserError(f"no Jupyter Book project (_toc.yml) in {here} or above; run this from the moviegpt repository")


def book_profile() -> str:
    return os.environ.get("MOVIEGPT_PROFILE", DEFAULT_PROFILE)


def book_config(extra: list[str] | None = None, log=lambda m: None, root: Path | None = None) -> Config:
    """The config the book runs (MOVIEGPT_PROFILE, runs under the project's runs/), resolved for this machine:
    the model that can be had and, for a budget, the cached plan."""
    cfg = load_config(book_profile(), [f"runs_dir={project_root(root) / 'runs'}", *(extra or [])])
    return train.resolve(cfg, log)[0]


def book_configs(log=lambda m: None, root: Path | None = None) -> dict[str, Config]:
    """Every run the book shows: the main one, and LoRA on the same model, data and budget."""
    return {"full fine-tuning": book_config(log=log, root=root), "LoRA": book_config(LORA_ARM, log=log, root=root)}


def book_run(cfg: Config | None = None) -> RunDir:
    """Train the book's profile, or reuse the finished run with the same resolved config. Whatever training
    prints goes to runs/<profile>.log, not into the book (`moviegpt book` shows it on the terminal)."""
    cfg = cfg or book_config()
    log_path = Path(cfg.runs_dir) / f"{cfg.profile}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as fh, contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
        return train.run(cfg)


def prepare_book(log=print) -> list[RunDir]:
    """`moviegpt book`: train (or reuse) and evaluate every run the book shows, with progress on the terminal."""
    runs = []
    for i, (name, cfg) in enumerate(book_configs(log).items()):
        log(f"== {name}: {cfg.run_name}")
        runs.append(train.run(cfg, log))
        if i == 0:  # the chapters evaluate the main run in depth; of the LoRA run they read the summary
            evaluate.evaluate_run(runs[-1].path, log=log)
    return runs


def metrics(run: RunDir) -> pd.DataFrame:
    return pd.DataFrame(run.metrics())


def evaluation(run: RunDir) -> Evaluation:
    """The run's eval.json (computed once: perplexity breakdowns, generation quality, concepts, recommendation)."""
    return evaluate.evaluate_run(run.path, log=lambda m: None)


def headline(run: RunDir) -> dict:
    """The introduction's numbers."""
    s, info = run.summary(), run.info()
    p = info.plan
    return {"profile": run.settings()["profile"], "model": info.model, "model_choice": info.model_choice,
            "ppl_before": s.base.perplexity, "ppl_after": s.final.perplexity, "ppl_ratio": 1 / s.perplexity_ratio,
            "test_films": s.final.films, "test_tokens": s.final.tokens, "train_films": s.data.used("train") or 0,
            "steps": s.steps, "minutes": s.wall_time_s / 60, "train_minutes": s.train_runtime_s / 60,
            "tok_s": s.tokens_per_second or 0.0, "wykonos_rows": data.WYKONOS_ROWS, "planned": p is not None,
            "budget": p.budget_minutes if p else 0.0, "plan_tok_s": p.tokens_per_second if p else 0.0,
            "plan_minutes": p.planned_seconds / 60 if p else 0.0, "plan_machine": p.machine if p else info.hardware["cpu"],
            "plan_reason": p.reason if p else "a fixed step count (no budget)"}


def provenance(run: RunDir) -> pd.DataFrame:
    """Everything that produced the book's numbers, read from the run's config.yaml."""
    c, r = run.settings(), run.info()
    hw = r.hardware
    rows = {
        "profile": c["profile"], "run directory": f"runs/{run.name}", "model": r.model, "model choice": r.model_choice,
        "parameters (trained)": f"{r.parameters:,} ({r.trainable_parameters or r.parameters:,})",
        "tokenizer": r.tokenizer, "precision": r.precision_note, "data source": c["data"]["source"],
        "films (in / after cleaning)": f"{r.data.rows_in or 0:,} / {r.data.rows_out or 0:,}",
        "films used (train / validation / test)": " / ".join(f"{r.data.used(s) or 0:,}" for s in data.SPLITS),
        "plan": r.plan.reason if r.plan else "none: a fixed step count",
        "hardware": f"{hw['cpu']} ({hw['cpu_cores']} cores, {hw.get('cpu_capability', '?')})"
                    + (f", {hw['gpu']}" if hw["gpu"] else ", no GPU"),
        "versions": ", ".join(f"{k} {v}" for k, v in r.versions.items()),
    }
    return pd.DataFrame({"setting": list(rows), "value": list(rows.values())}).set_index("setting")


# ---------------------------------------------------------------- dataset and methodology chapters

def cleaned_films(cfg: Config) -> tuple[pd.DataFrame, dict]:
    """All films of the run's source after cleaning (before any cap), with the cleaning counts."""
    return data.load_clean(cfg.data)


def training_films(cfg: Config) -> pd.DataFrame:
    """The training films the run used (same split, shuffle and cap)."""
    return data.load_splits(cfg.data, cfg.seed).train


def genre_counts(films: pd.DataFrame) -> pd.Series:
    return films["genres"].explode().dropna().value_counts()


def dataset_facts(cfg: Config, films: pd.DataFrame, counts: dict, lengths: np.ndarray, limit: int = 128) -> dict:
    genres = genre_counts(films)
    return {"source": cfg.data.source, "rows_in": counts["rows_in"], "rows_out": counts["rows_out"],
            "dropped": counts["rows_in"] - counts["rows_out"], "median_len": float(np.median(lengths)),
            "share_over": float((lengths > limit).mean()), "limit": limit, "n_genres": len(genres),
            "top_genre": genres.index[0] if len(genres) else "none"}


def cleaning_table(counts: dict) -> pd.DataFrame:
    rows = [("rows in", counts["rows_in"])] + [(f"dropped: {k.replace('_', ' ')}", v) for k, v in counts["dropped"].items()]
    return pd.DataFrame(rows + [("rows out", counts["rows_out"])], columns=["step", "films"]).set_index("step")


def split_table(run: RunDir) -> pd.DataFrame:
    return pd.DataFrame({k: v.__dict__ for k, v in run.info().data.splits.items()}).T.rename_axis("split")


def overview_lengths(films: pd.DataFrame) -> np.ndarray:
    """Overview length in GPT-2 tokens (the shipped GPT-2 tokenizer, whatever model ran)."""
    tok, _ = tokens.load_tokenizer("gpt2-bundled")
    return np.array([len(ids) for ids in tok(films["overview"].tolist())["input_ids"]])


def example_rows(films: pd.DataFrame, n: int = 5) -> pd.DataFrame:
    out = films[["title", "year", "genres", "overview"]].head(n).copy()
    out["genres"] = out["genres"].map(", ".join)
    out["overview"] = out["overview"].str.slice(0, 140) + "…"
    return out.reset_index(drop=True)


def example_encoding(cfg: Config, film: dict) -> dict:
    """One film as the model sees it: text (with EOS), token ids, and the tokens they stand for."""
    tok, _ = tokens.load_tokenizer(cfg.model.tokenizer or cfg.model.name)
    text = tokens.format_film(film, cfg.text.template) + tok.eos_token
    ids = tok(text)["input_ids"]
    return {"text": text, "ids": ids, "pieces": tok.convert_ids_to_tokens(ids), "eos_id": tok.eos_token_id}


def batching_comparison(cfg: Config, films: pd.DataFrame) -> dict:
    """Pad vs pack on the training films that ran, with the run's tokenizer and lengths."""
    tok, _ = tokens.load_tokenizer(cfg.model.tokenizer or cfg.model.name)
    return tokens.batching_stats(tokens.token_lengths(films, tok, cfg.text.template),
                                 cfg.text.max_length, cfg.text.block_size)


def method_facts(cfg: Config, example: dict, stats: dict) -> dict:
    return {"template": cfg.text.template.replace("\n", "\\n"), "n_ids": len(example["ids"]), "eos_id": example["eos_id"],
            "max_length": cfg.text.max_length, "block_size": cfg.text.block_size, "films": stats["films"],
            "pad_share": stats["pad"]["padding_share"], "truncated": stats["pad"]["truncated_tokens"],
            "truncated_films": stats["pad"]["truncated_films"], "dropped_tail": stats["pack"]["dropped_tail_tokens"],
            "batching": cfg.text.batching}


def config_yaml(cfg: Config) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False, allow_unicode=True)


def run_files(run: RunDir) -> pd.DataFrame:
    """Every file of a run with its size, checkpoints folded to one line each."""
    rows = []
    for p in sorted(run.path.rglob("*")):
        rel = p.relative_to(run.path)
        if p.is_file() and not (rel.parts[0] in ("checkpoints", "tensorboard") and len(rel.parts) > 2) \
                and not p.name.startswith("."):
            rows.append((str(rel), p.stat().st_size))
        elif p.is_dir() and rel.parts[0] == "checkpoints" and len(rel.parts) == 2:
            rows.append((f"{rel}/", sum(f.stat().st_size for f in p.rglob("*") if f.is_file())))
    return pd.DataFrame(rows, columns=["file", "bytes"]).set_index("file")


# ---------------------------------------------------------------- results and applications chapters

def perplexity_table(run: RunDir) -> pd.DataFrame:
    s = run.summary()
    return pd.DataFrame([{"model": "before fine-tuning", **s.base.__dict__}, {"model": "after fine-tuning", **s.final.__dict__}]
                        ).set_index("model")[["loss", "perplexity", "tokens", "films"]].round(3)


def generation_examples(ev: Evaluation, n: int = 4) -> pd.DataFrame:
    """Real against generated overviews for the first unseen test titles; CUT marks a text cut at the token limit."""
    shown = lambda s: generate.shown(s.__dict__)
    return pd.DataFrame([{"title": e.title, "real overview": e.real, **{m: shown(e.generated[m]) for m in MODELS}}
                         for e in ev.examples[:n]])


def generation_table(ev: Evaluation) -> pd.DataFrame:
    cols = {"eos_share": "ends with EOS", "mean_words": "mean words", "distinct_1": "distinct-1",
            "distinct_2": "distinct-2", "repeated_3gram_rate": "repeated 3-grams",
            "longest_copy_words": "longest copy from training (words)"}
    rows = {"real overviews": ev.generation["real"], **{m: ev.generation[m] for m in MODELS}}
    return pd.DataFrame({name: {cols[k]: getattr(q, k) for k in cols} for name, q in rows.items()}).T.round(3)


def recommendation_table(ev: Evaluation) -> pd.DataFrame:
    names = {"random": "random films (chance)", "tf-idf": "TF-IDF of overview words", "base": "base model embeddings",
             "fine-tuned": "fine-tuned model embeddings"}
    return pd.DataFrame({f"genre overlap@{ev.k}": {names[k]: ev.recommendation[k] for k in names}}).round(3)


def neighbour_table(ev: Evaluation) -> pd.DataFrame:
    return pd.DataFrame([n.__dict__ for n in ev.neighbours]).round(3).set_index(["film", "rank"])


def concept_table(ev: Evaluation) -> pd.DataFrame:
    return pd.DataFrame({m: {"concepts": c.n, "new titles, first draw": c.new_first,
                             "new titles, after redrawing known ones": c.new_final} for m, c in ev.concepts.items()}).T


def result_facts(run: RunDir, ev: Evaluation) -> dict:
    s, g = run.summary(), ev.generation
    return {"last_eval": s.last_eval_loss or float("nan"), "ppl_before": s.base.perplexity, "ppl_after": s.final.perplexity,
            "eos_base": g["base"].eos_share, "eos_tuned": g["fine-tuned"].eos_share, "n_gen": g["base"].n,
            "temperature": generate.Sampling.temperature, "top_p": generate.Sampling.top_p,
            "test_films": ev.test_films, "k": ev.k, "new_first": ev.concepts["fine-tuned"].new_first,
            "new_final": ev.concepts["fine-tuned"].new_final, "n_concepts": ev.concepts["fine-tuned"].n,
            **{f"rec_{k.replace('-', '_')}": v for k, v in ev.recommendation.items()}}


INVENTED_TITLES = ["The Lighthouse Keeper's Daughter", "Midnight at the Robot Circus", "A Quiet Week in Nowhere"]


@functools.lru_cache(maxsize=2)
def _trained(model_dir: str):
    return model_stage.load_trained(model_dir)


def _table(out: list[dict], key: str = "text") -> pd.DataFrame:
    return pd.DataFrame({"title": [r["title"] for r in out], "generated overview": [generate.shown(r, key) for r in out]})


def invented_titles(run: RunDir, titles: list[str] = INVENTED_TITLES, max_new_tokens: int = 60) -> pd.DataFrame:
    model, tok, s = _trained(str(run.model_dir))
    how = generate.Sampling(max_new_tokens=max_new_tokens, seed=0)
    fields = _first_fields(run, s["template"])
    return _table(generate.generate_overviews(model, tok, [{**fields, "title": t} for t in titles], s["template"], how=how))


def concepts(run: RunDir, num: int = 3, max_new_tokens: int = 80) -> pd.DataFrame:
    """Films invented whole; a title that exists in the data is drawn again (up to three draws)."""
    model, tok, s = _trained(str(run.model_dir))
    cfg = load_run_config(run.path)
    out = generate.concepts(model, tok, s["template"], num, generate.Sampling(max_new_tokens=max_new_tokens, seed=1),
                            data.known_titles(cfg.data), fields=_first_fields(run, s["template"]))
    return _table(out, "overview").assign(**{"draws": [r["draws"] for r in out],
                                             "title is a real film": [r["title_known"] for r in out]})


def completion(run: RunDir, title: str, start: str, num: int = 2, max_new_tokens: int = 60) -> pd.DataFrame:
    model, tok, s = _trained(str(run.model_dir))
    prompt = generate.build_prompt("completion", s["template"], title=title, text=start,
                                   fields=_first_fields(run, s["template"]))
    out = generate.attach(generate.sample(model, tok, [prompt], num=num,
                                          how=generate.Sampling(max_new_tokens=max_new_tokens, seed=2)),
                          "completion", title, start)
    return _table(out, "overview")


def _first_fields(run: RunDir, template: str) -> dict:
    """Template fields other than title and overview (e.g. genres), from the run's first test film."""
    from moviegpt.validate import fields_of

    extra = [f for f in fields_of(template) if f not in ("title", "overview")]
    if not extra:
        return {}
    cfg = load_run_config(run.path)
    film = data.load_splits(cfg.data, cfg.seed).test.iloc[0]
    return {f: film[f] for f in extra if f in film}


def scale(run: RunDir) -> dict:
    """How much of the full recipe this run covered, from its own counts."""
    s, info = run.summary(), run.info()
    films = s.data.used("train") or 1
    tokens_per_film = s.tokens_seen / max(s.epochs, 1e-9) / films
    full_tokens = data.WYKONOS_ROWS * tokens_per_film
    return {"tokens_seen": s.tokens_seen, "films_trained": films, "tokens_per_film": tokens_per_film,
            "full_dataset_tokens": full_tokens, "share_of_one_full_epoch": s.tokens_seen / full_tokens,
            "parameters": info.parameters, **GPT2_SIZES,
            "hours_for_one_full_epoch": full_tokens / (s.tokens_per_second or 1) / 3600}


def comparison(runs: dict[str, RunDir]) -> pd.DataFrame:
    """Full fine-tuning against LoRA: the same model, data and wall-clock budget, measured from the runs."""
    rows = {}
    for name, run in runs.items():
        s, info = run.summary(), run.info()
        rows[name] = {"trainable parameters": info.trainable_parameters or info.parameters, "steps": s.steps,
                      "tokens trained": s.tokens_seen, "tokens/s": round(s.tokens_per_second or 0),
                      "training minutes": round(s.train_runtime_s / 60, 2),
                      "peak memory (MB)": round(s.peak_memory_mb or 0),
                      "perplexity before": round(s.base.perplexity, 2), "perplexity after": round(s.final.perplexity, 2)}
    return pd.DataFrame(rows).T.rename_axis("method")


def comparison_facts(runs: dict[str, RunDir]) -> dict:
    (full, lora) = (runs[k] for k in ("full fine-tuning", "LoRA"))
    f, lo = full.summary(), lora.summary()
    return {"lora_trainable": lora.info().trainable_parameters or 0, "full_trainable": full.info().trainable_parameters or 0,
            "lora_share": (lora.info().trainable_parameters or 0) / max(full.info().parameters, 1),
            "lora_ppl": lo.final.perplexity, "full_ppl": f.final.perplexity,
            "lora_speed_x": (lo.tokens_per_second or 0) / max(f.tokens_per_second or 1, 1e-9),
            "lora_memory_x": (lo.peak_memory_mb or 0) / max(f.peak_memory_mb or 1, 1e-9),
            "budget_minutes": (full.info().plan.budget_minutes if full.info().plan else f.train_runtime_s / 60)}


def full_recipe_facts() -> dict:
    full = load_config("full")
    return {"full_tokens_per_step": full.tokens_per_step, "full_batch": full.train.batch_size,
            "full_accum": full.train.grad_accum, "full_block": full.text.block_size}


def card_data(run: RunDir) -> dict:
    """The model card's machine-readable part (what the hub's tooling reads)."""
    from huggingface_hub import ModelCard

    d = ModelCard.load(str(run.model_dir / "README.md")).data.to_dict()
    return {k: d.get(k) for k in ("base_model", "datasets", "license", "pipeline_tag", "tags")}

