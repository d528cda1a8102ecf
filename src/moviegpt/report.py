"""The report stage: what the book's chapters display, computed from the data and the run's artifacts.

Chapters call these functions and show the result; no chapter computes anything itself.
"""
from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import yaml

from moviegpt import bench, data, evaluate, generate, model as model_stage, recommend, tokens, train
from moviegpt.config import GENERATION_DEFAULTS, PROJECT_ROOT, Config, load_config, load_run_config

DEFAULT_PROFILE = "demo"  # the offline profile the book shows unless MOVIEGPT_PROFILE says otherwise
GPT2_SIZES = {"gpt2_parameters": 124_439_808, "gpt2_medium_parameters": 354_823_168,  # GPT2LMHeadModel
              "gpt2_large_parameters": 774_030_080}                                     # parameter counts
WYKONOS_ROWS = 722_796  # rows of the full wykonos/movies dataset (its hub card); used to scale the sample
pd.set_option("display.max_colwidth", None)  # tables in the book show whole cells
plt.rcParams.update({"figure.figsize": (7, 3.6), "figure.dpi": 110, "axes.spines.top": False,
                     "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3})


def _done(fig):
    """Close a finished figure: a notebook shows it once, as the cell's result, not again via the inline backend."""
    fig.tight_layout()
    plt.close(fig)
    return fig


def book_profile() -> str:
    return os.environ.get("MOVIEGPT_PROFILE", DEFAULT_PROFILE)


def book_config() -> Config:
    """The config the book runs: the profile named by MOVIEGPT_PROFILE, with runs under the project's runs/."""
    return model_stage.choose(load_config(book_profile(), [f"runs_dir={PROJECT_ROOT / 'runs'}"]))


@dataclass
class Run:
    """A finished run directory, read back for the report."""

    dir: Path

    @cached_property
    def config(self) -> dict:
        return yaml.safe_load((self.dir / "config.yaml").read_text())

    @cached_property
    def summary(self) -> dict:
        return json.loads((self.dir / "summary.json").read_text())

    @cached_property
    def metrics(self) -> pd.DataFrame:
        return pd.DataFrame(train.read_metrics(self.dir))

    @property
    def resolved(self) -> dict:
        return self.config["resolved"]


def book_run(cfg: Config | None = None) -> Run:
    """Train the book's profile, or reuse the finished run with the same resolved config.

    Whatever training prints (Trainer logs, progress bars) goes to the run's train.log, not into the book."""
    cfg = cfg or book_config()
    log_path = train.run_dir_for(cfg) / "train.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as fh, contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
        return Run(train.run(cfg))


def headline(run: Run) -> dict:
    """The introduction's numbers."""
    s = run.summary
    return {"profile": run.config["profile"], "model": run.resolved["model"], "model_choice": run.resolved["model_choice"],
            "ppl_before": s["base"]["perplexity"], "ppl_after": s["final"]["perplexity"],
            "ppl_ratio": 1 / s["perplexity_ratio"], "test_films": s["final"]["films"], "test_tokens": s["final"]["tokens"],
            "train_films": s["data"]["splits"]["train"]["used"], "steps": s["steps"],
            "minutes": s["wall_time_s"] / 60, "tok_s": s["tokens_per_second"], "wykonos_rows": WYKONOS_ROWS}


def provenance(run: Run) -> pd.DataFrame:
    """Everything that produced the book's numbers, read from the run's config.yaml."""
    c, r = run.config, run.resolved
    counts = r["data"]
    rows = {
        "profile": c["profile"], "run directory": f"runs/{run.dir.name}", "model": r["model"],
        "model choice": r["model_choice"],
        "parameters": f"{r['parameters']:,}", "tokenizer": r["tokenizer"], "precision": r["precision_note"],
        "data source": c["data"]["source"],
        "films (in / after cleaning)": f"{counts['rows_in']:,} / {counts['rows_out']:,}",
        "films used (train / validation / test)": " / ".join(f"{counts['splits'][s]['used']:,}" for s in data.SPLITS),
        "hardware": f"{r['hardware']['cpu']} ({r['hardware']['cpu_cores']} cores)"
                    + (f", {r['hardware']['gpu']}" if r["hardware"]["gpu"] else ", no GPU"),
        "versions": ", ".join(f"{k} {v}" for k, v in r["versions"].items()),
    }
    return pd.DataFrame({"setting": list(rows), "value": list(rows.values())}).set_index("setting")


# ---------------------------------------------------------------- dataset chapter

def cleaned_films(cfg: Config) -> tuple[pd.DataFrame, dict]:
    """All films of the run's source after cleaning (before any cap), with the cleaning counts."""
    return data.load_clean(cfg.data)


def training_films(cfg: Config) -> pd.DataFrame:
    """The training films the run used (same split, shuffle and cap)."""
    return data.load_splits(cfg.data, cfg.seed).train


def dataset_facts(cfg: Config, films: pd.DataFrame, counts: dict, lengths: np.ndarray, limit: int = 128) -> dict:
    """The dataset chapter's numbers."""
    genres = genre_counts(films)
    return {"source": cfg.data.source, "rows_in": counts["rows_in"], "rows_out": counts["rows_out"],
            "dropped": counts["rows_in"] - counts["rows_out"], "median_len": float(np.median(lengths)),
            "share_over": float((lengths > limit).mean()), "limit": limit, "n_genres": len(genres), "top_genre": genres.index[0]}


def cleaning_table(counts: dict) -> pd.DataFrame:
    rows = [("rows in", counts["rows_in"])] + [(f"dropped: {k.replace('_', ' ')}", v) for k, v in counts["dropped"].items()]
    return pd.DataFrame(rows + [("rows out", counts["rows_out"])], columns=["step", "films"]).set_index("step")


def split_table(counts: dict) -> pd.DataFrame:
    return pd.DataFrame(counts["splits"]).T.rename_axis("split")


def overview_lengths(films: pd.DataFrame) -> np.ndarray:
    """Overview length in GPT-2 tokens (the shipped GPT-2 tokenizer, whatever model ran)."""
    tok, _ = tokens.load_tokenizer("gpt2-bundled")
    return np.array([len(ids) for ids in tok(films["overview"].tolist())["input_ids"]])


def plot_length_histogram(lengths: np.ndarray, limit: int = 128):
    fig, ax = plt.subplots()
    ax.hist(lengths, bins=60, color="#4C72B0")
    ax.axvline(limit, color="#C44E52", ls="--", label=f"{limit}-token limit of the report's recipe")
    ax.set(xlabel="overview length (GPT-2 tokens)", ylabel="films")
    ax.legend()
    return _done(fig)


def genre_counts(films: pd.DataFrame) -> pd.Series:
    return films["genres"].explode().dropna().value_counts()


def plot_genres(films: pd.DataFrame, top: int = 20):
    counts = genre_counts(films).head(top)[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(counts) + 0.8))
    ax.barh(counts.index, counts.values, color="#55A868")
    ax.set(xlabel="films (a film counts once per genre)")
    return _done(fig)


def plot_years(films: pd.DataFrame):
    years = films["year"].dropna().astype(int)
    fig, ax = plt.subplots()
    ax.hist(years, bins=range(years.min(), years.max() + 2), color="#8172B2")
    ax.set(xlabel="release year", ylabel="films")
    return _done(fig)


def example_rows(films: pd.DataFrame, n: int = 5) -> pd.DataFrame:
    out = films[["title", "year", "genres", "overview"]].head(n).copy()
    out["genres"] = out["genres"].map(", ".join)
    out["overview"] = out["overview"].str.slice(0, 140) + "…"
    return out.reset_index(drop=True)


# ---------------------------------------------------------------- methodology chapter

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


def plot_batching(stats: dict):
    modes = ["pad", "pack"]
    useful = np.array([stats[m]["real_tokens"] for m in modes])
    padding = np.array([stats[m]["padding_tokens"] for m in modes])
    lost = np.array([stats["pad"]["truncated_tokens"], stats["pack"]["dropped_tail_tokens"]])
    fig, ax = plt.subplots(figsize=(7, 2.6))
    labels = [f"pad to {stats['pad']['slots'] // max(stats['films'], 1)}", "pack"]
    ax.barh(labels, useful, color="#55A868", label="trained-on tokens")
    ax.barh(labels, padding, left=useful, color="#C8C8C8", label="padding (computed, then ignored)")
    ax.barh(labels, lost, left=useful + padding, color="#C44E52", label="cut off (truncated / last partial block)")
    ax.set(xlabel="tokens")
    ax.legend(loc="lower right", fontsize=8)
    return _done(fig)


# ---------------------------------------------------------------- results chapter

def plot_losses(run: Run):
    m = run.metrics
    tr, ev = m[m["kind"] == "train"], m[m["kind"] == "eval"]
    fig, ax = plt.subplots()
    ax.plot(tr["step"], tr["loss"], label="training loss", color="#4C72B0")
    ax.plot(ev["step"], ev["eval_loss"], "o-", label="validation loss", color="#C44E52")
    ax.set(xlabel="optimizer step", ylabel="cross-entropy (nats/token)")
    ax.legend()
    return _done(fig)


def plot_val_perplexity(run: Run):
    ev = run.metrics[run.metrics["kind"] == "eval"]
    fig, ax = plt.subplots()
    ax.plot(ev["step"], ev["eval_perplexity"], "o-", color="#C44E52")
    ax.set(xlabel="optimizer step", ylabel="validation perplexity", yscale="log")
    return _done(fig)


def perplexity_table(run: Run) -> pd.DataFrame:
    s = run.summary
    return pd.DataFrame([{"model": "before fine-tuning", **s["base"]}, {"model": "after fine-tuning", **s["final"]}]
                        ).set_index("model")[["loss", "perplexity", "tokens", "films"]].round(3)


MODELS = ("base", "fine-tuned")


def evaluation(run: Run) -> dict:
    """The run's eval.json (computed once: perplexity breakdowns, generation quality, recommendation)."""
    return evaluate.evaluate_run(run.dir, log=lambda m: None)


def generation_examples(ev: dict, n: int = 4) -> pd.DataFrame:
    """Real vs generated overviews for the first unseen test titles; "[…]" marks a text cut at the token limit."""
    cut = lambda g: g["text"] + ("" if g["ended_with_eos"] else " […]")
    return pd.DataFrame({"title": ev["examples"]["title"][:n], "real overview": ev["examples"]["real"][:n],
                         **{m: [cut(g) for g in ev["examples"][m][:n]] for m in MODELS}})


def generation_table(ev: dict) -> pd.DataFrame:
    cols = {"eos_share": "ends with EOS", "mean_words": "mean words", "distinct_1": "distinct-1",
            "distinct_2": "distinct-2", "repeated_3gram_rate": "repeated 3-grams", "longest_copy_words":
            "longest copy from training (words)"}
    rows = {"real overviews": ev["generation"]["real"], **{m: ev["generation"][m] for m in MODELS}}
    return pd.DataFrame({name: {cols[k]: q[k] for k in cols} for name, q in rows.items()}).T.round(3)


def plot_generation_lengths(ev: dict):
    fig, ax = plt.subplots()
    data_ = [ev["generation"][k]["words"] for k in ("real", *MODELS)]
    ax.boxplot(data_, tick_labels=["real overviews", *MODELS], vert=False)
    ax.set(xlabel="words per overview")
    return _done(fig)


def plot_perplexity_breakdown(ev: dict):
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), sharey=False)
    for ax, key, title in zip(axes, ("by_genre", "by_length"), ("by genre", "by length (tokens)")):
        groups = [g["group"] for g in ev["perplexity"]["fine-tuned"][key]]
        y = np.arange(len(groups))
        for off, m, color in ((-0.2, "base", "#C8C8C8"), (0.2, "fine-tuned", "#4C72B0")):
            by = {g["group"]: g["perplexity"] for g in ev["perplexity"][m][key]}
            ax.barh(y + off, [by.get(g, np.nan) for g in groups], height=0.4, color=color, label=m)
        ax.set(yticks=y, yticklabels=groups, xlabel="held-out perplexity", title=title)
    axes[0].legend()
    return _done(fig)


def recommendation_table(ev: dict) -> pd.DataFrame:
    names = {"random": "random films (chance)", "tf-idf": "TF-IDF of overview words", "base": "base model embeddings",
             "fine-tuned": "fine-tuned model embeddings"}
    return pd.DataFrame({f"genre overlap@{ev['k']}": {names[k]: ev["recommendation"][k] for k in names}}).round(3)


def neighbour_examples(run: Run, n: int = 3, k: int = 3) -> pd.DataFrame:
    """For the first test films, their k nearest test films by the fine-tuned model's embeddings."""
    cfg = load_run_config(run.dir)
    test = data.load_splits(cfg.data, cfg.seed).test
    model, tok, _ = model_stage.load_trained(str(run.dir / "model"))
    rec = recommend.Recommender(model, tok, test)
    rows = []
    for title, genres in zip(test["title"].head(n), test["genres"].head(n)):
        table, _ = rec.by_title(title, k)
        rows += [{"film": f"{title} ({', '.join(genres)})", "rank": i + 1, "neighbour": f"{r.title} ({r.genres})",
                  "similarity": round(r.similarity, 3)} for i, r in enumerate(table.itertuples())]
    return pd.DataFrame(rows).set_index(["film", "rank"])


# ---------------------------------------------------------------- limitations chapter

def scale(run: Run) -> dict:
    """How much of the full recipe this run covered, from its own counts."""
    s, c = run.summary, run.resolved["data"]
    tokens_per_film = s["tokens_seen"] / max(s["epochs"], 1e-9) / max(c["splits"]["train"]["used"], 1)
    full_tokens = WYKONOS_ROWS * tokens_per_film
    return {"tokens_seen": s["tokens_seen"], "films_trained": c["splits"]["train"]["used"],
            "tokens_per_film": tokens_per_film, "full_dataset_tokens": full_tokens,
            "share_of_one_full_epoch": s["tokens_seen"] / full_tokens, "parameters": run.resolved["parameters"],
            **GPT2_SIZES, "hours_for_one_full_epoch": full_tokens / s["tokens_per_second"] / 3600}


# ---------------------------------------------------------------- methodology, implementation, results facts

def method_facts(cfg: Config, example: dict, stats: dict) -> dict:
    return {"template": cfg.text.template.replace("\n", "\\n"), "n_ids": len(example["ids"]), "eos_id": example["eos_id"],
            "max_length": cfg.text.max_length, "block_size": cfg.text.block_size, "films": stats["films"],
            "pad_share": stats["pad"]["padding_share"], "truncated": stats["pad"]["truncated_tokens"],
            "truncated_films": stats["pad"]["truncated_films"], "dropped_tail": stats["pack"]["dropped_tail_tokens"],
            "batching": cfg.text.batching}


def config_yaml(cfg: Config) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False, allow_unicode=True)


def run_files(run_dir: Path) -> pd.DataFrame:
    """Every file of a run with its size, checkpoints folded to one line each."""
    rows = []
    for p in sorted(Path(run_dir).rglob("*")):
        rel = p.relative_to(run_dir)
        if p.is_file() and not (rel.parts[0] == "checkpoints" and len(rel.parts) > 2) and not p.name.startswith("."):
            rows.append((str(rel), p.stat().st_size))
        elif p.is_dir() and rel.parts[0] == "checkpoints" and len(rel.parts) == 2:
            rows.append((f"{rel}/", sum(f.stat().st_size for f in p.rglob("*") if f.is_file())))
    return pd.DataFrame(rows, columns=["file", "bytes"]).set_index("file")


def result_facts(run: Run, ev: dict) -> dict:
    s, g = run.summary, ev["generation"]
    return {"last_eval": s["last_eval_loss"], "ppl_before": s["base"]["perplexity"], "ppl_after": s["final"]["perplexity"],
            "eos_base": g["base"]["eos_share"], "eos_tuned": g["fine-tuned"]["eos_share"], "n_gen": g["base"]["n"],
            "temperature": GENERATION_DEFAULTS["temperature"], "top_p": GENERATION_DEFAULTS["top_p"],
            "test_films": ev["test_films"], "k": ev["k"], **{f"rec_{k.replace('-', '_')}": v for k, v in ev["recommendation"].items()}}


INVENTED_TITLES = ["The Lighthouse Keeper's Daughter", "Midnight at the Robot Circus", "A Quiet Week in Nowhere"]


def _table(out: list[dict], overview_key: str = "text") -> pd.DataFrame:
    return pd.DataFrame({"title": [r["title"] for r in out],
                         "generated overview": [r[overview_key] + ("" if r["ended_with_eos"] else " […]") for r in out]})


def invented_titles(run: Run, titles: list[str] = INVENTED_TITLES, max_new_tokens: int = 60) -> pd.DataFrame:
    return _table(generate.generate_for(str(run.dir / "model"), titles, max_new_tokens=max_new_tokens, seed=0))


def concepts(run: Run, num: int = 3, max_new_tokens: int = 80) -> pd.DataFrame:
    """Films invented whole: the model is prompted with the template's first word and writes title and overview."""
    out = generate.generate_for(str(run.dir / "model"), mode="concept", num=num, max_new_tokens=max_new_tokens, seed=1)
    known = set(cleaned_films(load_run_config(run.dir))[0]["title"].str.casefold())
    return _table(out, "overview").assign(**{"title is a real film in the data": [r["title"].casefold() in known for r in out]})


def completion(run: Run, title: str, start: str, num: int = 2, max_new_tokens: int = 60) -> pd.DataFrame:
    out = generate.generate_for(str(run.dir / "model"), [title], mode="completion", text=start, num=num,
                                max_new_tokens=max_new_tokens, seed=2)
    return _table(out, "overview")


# ---------------------------------------------------------------------------------------------
# performance (benchmarks/results/*.json, written by the scripts in benchmarks/)

BENCH_RESULTS = PROJECT_ROOT / "benchmarks" / "results"


def benchmarks() -> dict:
    """The committed benchmark results, by name (each records the machine it ran on)."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(BENCH_RESULTS.glob("*.json"))}


def throughput_table(res: dict, name: str = "train_throughput") -> pd.DataFrame:
    rows = res[name]["throughput"]
    return pd.DataFrame({"recipe": [r["recipe"] for r in rows],
                         "useful tokens/s": [round(r["useful_tokens_per_s"]) for r in rows],
                         "all tokens/s": [round(r["tokens_per_s"]) for r in rows],
                         "useful share": [round(r["useful_share"], 3) for r in rows],
                         "precision": [r["precision"] for r in rows],
                         "MFU": [f"{r['mfu']:.1%}" for r in rows],
                         "x original": [round(r["x_original"], 2) for r in rows],
                         "x original, by round": [" ".join(f"{x:.2f}" for x in r["x_original_by_round"]) for r in rows],
                         }).set_index("recipe")


def target_note(rows: dict, target: float = 3.0) -> str:
    """Whether ours reached `target` x the original's useful tokens/s in every round of the run."""
    by_round = rows["ours"]["x_original_by_round"]
    lo, hi = min(by_round), max(by_round)
    met = "met in every round" if lo >= target else f"not met in every round (the lowest round gave {lo:.2f}x)"
    return (f"Paired with the window of the original in the same round, ours was {lo:.2f} to {hi:.2f} times as fast "
            f"in the {len(by_round)} rounds: the target of {target:g}x is {met}.")


def plot_throughput(res: dict):
    rows = res["train_throughput"]["throughput"]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    names = [r["recipe"] for r in rows][::-1]
    ax.barh(names, [r["tokens_per_s"] for r in rows][::-1], color="#DDDDDD", label="all tokens (padding included)")
    ax.barh(names, [r["useful_tokens_per_s"] for r in rows][::-1], color="#4C72B0", label="useful tokens")
    ax.set(xlabel="tokens per second")
    ax.legend(loc="lower right", fontsize=8)
    return _done(fig)


def plot_time_to_quality(res: dict):
    q = res["train_throughput"]["time_to_quality"]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for r, color in zip(q, ("#C8C8C8", "#4C72B0")):
        ax.plot([p["train_seconds"] for p in r["curve"]], [p["val_loss"] for p in r["curve"]], "o-", color=color,
                label=r["recipe"])
    ax.axhline(q[0]["target_val_loss"], color="#999999", ls=":", lw=1, label="original's final loss")
    ax.set(xlabel="training seconds (evaluation excluded)", ylabel="held-out loss")
    ax.legend(fontsize=8)
    return _done(fig)


def data_prep_table(res: dict) -> pd.DataFrame:
    d = res["data_prep"]["recipes"]
    base = d["original (per-row map, pad 128)"]["rows_per_s"]
    return pd.DataFrame([{"recipe": k, "rows": r["rows"], "seconds": round(r["seconds"], 1), "rows/s": round(r["rows_per_s"]),
                          "x original": round(r["rows_per_s"] / base, 1), "peak memory (MB)": round(r["peak_rss_mb"])}
                         for k, r in d.items()]).set_index("recipe")


def checkpoint_table(res: dict) -> pd.DataFrame:
    rows = res["checkpoint_cost"]["rows"]
    return pd.DataFrame([{"model": r["model"], "recipe": r["recipe"], "checkpoint (MB)": round(r["checkpoint_MB"]),
                          "save (s)": round(r["save_s"], 2), "step (s)": round(r["step_s"], 2),
                          "saves every": f"{r['save_steps']} steps" + (f" or {r['save_minutes']:g} min" if r["save_minutes"] else ""),
                          "time saving": f"{r['saving_share']:.2%}",
                          "saves, full data": int(r["full_data_steps"] * r["step_s"]
                                                  // bench.save_interval(r["step_s"], r["save_steps"], r["save_minutes"]))}
                         for r in rows]).set_index(["model", "recipe"])


def performance_facts(res: dict) -> dict:
    tt = res["train_throughput"]
    rows = {r["recipe"]: r for r in tt["throughput"]}
    q = {r["recipe"]: r for r in tt.get("time_to_quality", [])}
    d = res["data_prep"]["recipes"]
    ours_prep, orig_prep = d["ours (cold cache)"], d["original (per-row map, pad 128)"]
    ck = {(r["model"], r["recipe"]): r for r in res["checkpoint_cost"]["rows"]}
    m = tt["machine"]
    facts = {
        "bench_cpu": m["cpu"], "bench_threads": m["torch_threads"], "bench_torch": m["torch"],
        "bench_params_m": tt["parameters"] / 1e6,
        "peak_fp32": tt["peak_flops"]["fp32"] / 1e9, "peak_bf16": tt["peak_flops"]["bf16"] / 1e9,
        "orig_useful": rows["original"]["useful_tokens_per_s"], "ours_useful": rows["ours"]["useful_tokens_per_s"],
        "orig_share": rows["original"]["useful_share"], "ours_x": rows["ours"]["x_original"],
        "orig_mfu": rows["original"]["mfu"], "ours_mfu": rows["ours"]["mfu"],
        "target_note": target_note(rows),
        "loss_only_x": rows["ours"]["useful_tokens_per_s"] / rows["ours, logits returned"]["useful_tokens_per_s"],
        "prep_rows": ours_prep["rows"], "prep_s": ours_prep["seconds"], "prep_mb": ours_prep["peak_rss_mb"],
        "prep_orig_s": orig_prep["seconds"], "prep_x": ours_prep["rows_per_s"] / orig_prep["rows_per_s"],
        "prep_again_s": d["ours (second prepare)"]["seconds"],
        "ckpt_orig_share": ck[("gpt2-124m", "original")]["saving_share"],
        "ckpt_ours_share": ck[("gpt2-124m", "ours")]["saving_share"],
        "ckpt_mb": ck[("gpt2-124m", "original")]["checkpoint_MB"],
        "ckpt_orig_saves": int(checkpoint_table(res).loc[("gpt2-124m", "original"), "saves, full data"]),
    }
    if q:
        facts.update(ttq_target=q["original"]["target_val_loss"], ttq_orig_s=q["original"]["train_seconds"],
                     ttq_ours_s=q["ours"]["seconds_to_target"] or float("nan"),
                     ttq_x=q["original"]["train_seconds"] / q["ours"]["seconds_to_target"] if q["ours"]["seconds_to_target"] else float("nan"),
                     ttq_ours_final=q["ours"]["final_val_loss"])
    big = {r["recipe"]: r for r in res.get("train_throughput_gpt2-124m", {}).get("throughput", [])}
    facts["gpt2_note"] = (
        f"GPT-2 124M itself, the original against ours only ({res['train_throughput_gpt2-124m']['machine']['cpu']}): "
        f"{big['original']['useful_tokens_per_s']:,.0f} against {big['ours']['useful_tokens_per_s']:,.0f} useful tokens "
        f"per second, {big['ours']['x_original']:.2f} times as many; MFU {big['original']['mfu']:.0%} (fp32) and "
        f"{big['ours']['mfu']:.0%} (bf16). {target_note(big)}" if big else
        "GPT-2 124M has not been measured yet (see benchmarks/train_throughput.py).")
    b = res.get("book_build")
    facts["book_note"] = (f"A clean build of this book with the {b['profile']} profile (training included) took "
                          f"{b['clean_s']:.0f} s; a rebuild with nothing changed took {b['rebuild_s']:.0f} s, because "
                          "every chapter's outputs come from the execution cache." if b else
                          "The book's build time has not been measured yet (python benchmarks/book_build.py).")
    return facts
