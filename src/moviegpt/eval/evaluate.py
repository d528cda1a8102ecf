"""The evaluate stage: held-out perplexity, token-weighted, and the whole evaluation of a run (eval.json).

Perplexity is exp(total NLL / total target tokens) over the whole split, the same for the base and the
fine-tuned model, so the two compare. (The mean of per-batch perplexities, or of per-batch mean losses when
batches hold different numbers of tokens, would not; nor would `evaluate`'s perplexity metric, which averages
per-text perplexities.) Each film is scored on its own (pad mode), so the number does not depend on how
training batched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from transformers import PreTrainedModel

from moviegpt.core import progress
from moviegpt.core.artifacts import (
    EVAL_BATCH,
    EVAL_CONCEPTS,
    EVAL_TITLES,
    EVAL_VERSION,
    ChatCheck,
    ConceptCheck,
    Evaluation,
    Example,
    Group,
    HeldOut,
    ModelPerplexity,
    Neighbour,
    Quality,
    Sample,
    eval_settings,
    from_dict,
)
from moviegpt.core.config import DataConfig
from moviegpt.core.errors import UserError
from moviegpt.core.rundir import RunDir
from moviegpt.core.settings import load_run_config
from moviegpt.data import movies, tokens
from moviegpt.eval import measures, recommend, similarity
from moviegpt.eval import chat
from moviegpt.eval.generate import Sampling, concepts, generate_overviews, sample
from moviegpt.model.causal_lm import SETTINGS_FILE as SETTINGS, load_model, load_trained, plain_forward
from moviegpt.model.tokenizer import load_tokenizer

LENGTH_BUCKETS = [0, 40, 80, 120, 10_000]  # overview length in the model's tokens
MODELS = ("base", "fine-tuned")
CHAT = "base, chat format"  # the base model prompted in its own chat format (a chat-tuned model only)


def token_nll(
    model: PreTrainedModel, ds: datasets.Dataset, batch_size: int = 8, desc: str = "held-out"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-film summed NLL and target-token counts for a pad-mode dataset (labels -100 on padding)."""
    return film_nll(model, ds, batch_size, desc)[:2]


@torch.no_grad()
def film_nll(model: PreTrainedModel, ds: datasets.Dataset, batch_size: int, desc: str):
    """Per film: summed NLL and target tokens, and both split by token type (films x tokens.TOKEN_TYPES; zeros
    where the dataset has no token_type column, as a pad-mode training set made by tokens.tokenize)."""
    model.eval()
    device = next(model.parameters()).device
    typed = "token_type" in ds.column_names
    nll, counts, type_nll, type_n = [], [], [], []
    kinds = torch.arange(1, len(tokens.TOKEN_TYPES) + 1)
    for i in progress.bar(range(0, len(ds), batch_size), desc=desc, unit="batch"):
        batch = ds[i : i + batch_size]
        mask = torch.tensor(batch["attention_mask"])
        width = int(mask.sum(1).max())  # drop columns that are padding in every row of this batch
        ids = torch.tensor(batch["input_ids"])[:, :width].to(device)
        labels = torch.tensor(batch["labels"])[:, :width].to(device)
        with plain_forward(model):  # fp32 before and after training alike, not Trainer's mixed-precision wrapper
            logits = model(input_ids=ids, attention_mask=mask[:, :width].to(device)).logits.float()
        target = labels[:, 1:]
        loss = F.cross_entropy(logits[:, :-1].transpose(1, 2), target, ignore_index=-100, reduction="none").cpu()
        nll.append(loss.double().sum(1))  # in float64, as the split by type below: the parts add up to the whole
        counts.append((target != -100).sum(1).cpu())
        kind = torch.tensor(batch["token_type"])[:, 1:width] if typed else torch.zeros_like(target.cpu())
        kind = torch.where(target.cpu() != -100, kind, 0)
        one_hot = (kind.unsqueeze(-1) == kinds).double()  # films x positions x types
        type_nll.append((loss.double().unsqueeze(-1) * one_hot).sum(1))
        type_n.append(one_hot.sum(1).long())
    return torch.cat(nll).double(), torch.cat(counts), torch.cat(type_nll), torch.cat(type_n)


def perplexity(model: PreTrainedModel, ds: datasets.Dataset, batch_size: int = 8, desc: str = "held-out") -> HeldOut:
    return held_out(*film_nll(model, ds, batch_size, desc))


def held_out(nll: torch.Tensor, n: torch.Tensor, type_nll=None, type_n=None) -> HeldOut:
    """Per-film NLL and tokens -> the token-weighted perplexity, computed by the shipped evaluate module; the split
    by token type is kept where the films carried their types."""
    r = measures.load("token_perplexity").compute(nll=nll.tolist(), tokens=n.tolist())
    held = HeldOut(r["loss"], r["perplexity"], r["tokens"], r["texts"], film_nll=nll.tolist(), film_tokens=n.tolist())
    if type_n is not None and int(type_n.sum()) == int(n.sum()):  # every target typed
        held.type_nll = {k: type_nll[:, j].tolist() for j, k in enumerate(tokens.TOKEN_TYPES)}
        held.type_tokens = {k: type_n[:, j].tolist() for j, k in enumerate(tokens.TOKEN_TYPES)}
    return held


def quality(gens: list[dict], training_texts: list[str]) -> dict:
    """Generation quality of texts, computed by the shipped evaluate module (moviegpt.eval.measures)."""
    return measures.load("generation_quality").compute(
        predictions=[g["text"] for g in gens],
        ended_with_eos=[bool(g["ended_with_eos"]) for g in gens],
        training_texts=training_texts,
    )


def cached_perplexity(key: dict, compute) -> HeldOut:
    """A held-out evaluation of a model that does not change (a hub model, a stand-in, a seeded scratch model)
    on a fixed set of films is computed once per machine: the book's LoRA run and a rerun reuse it."""
    import hashlib

    from moviegpt.core.artifacts import to_dict
    from moviegpt.core.config import CACHE_DIR
    from moviegpt.core.validate import dumps, read_small_json, write_atomic

    path = CACHE_DIR / "held-out" / f"{hashlib.sha256(dumps(key, sort_keys=True).encode()).hexdigest()[:16]}.json"
    try:  # a cache entry is input: a regular file of bounded size, a record whose films are those asked for
        held = from_dict(HeldOut, read_small_json(path, 16 << 20))
        if held.film_nll is None or len(held.film_nll) != held.films or held.films != key.get("n_films", held.films):
            raise ValueError("not the films asked for")
        return held
    except (OSError, ValueError, TypeError):
        held = compute()
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, dumps(to_dict(held)))
        return held


def evaluate_model(
    model_dir: str, source: str = "bundled", split: str = "test", max_rows: int | None = None, batch_size: int = 8
) -> dict:
    """`moviegpt evaluate --model`: a trained model on one split of any data source (split by the same film hashes)."""
    model, tok, s = load_trained(model_dir)
    splits = movies.load_splits(
        DataConfig(source=source, splits=s["splits"], max_train_rows=max_rows, max_eval_rows=max_rows), s["seed"]
    )
    if not len(splits[split]):
        raise UserError(
            f"the {split} split of {source} is empty under this model's splits {s['splits']} (its {SETTINGS}); "
            "choose another --split"
        )
    ds = tokens.scored(splits[split], tok, s["template"], s["max_length"], desc=f"{split} films")
    held = perplexity(model, ds, batch_size, desc=f"{split} films")
    return {"model": str(model_dir), "data": source, "split": split, **held.__dict__}


def breakdown(nll: torch.Tensor, n: torch.Tensor, films: pd.DataFrame, top_genres: int = 8) -> dict[str, list[Group]]:
    """Token-weighted perplexity per genre (the most frequent) and per film-length bucket."""
    df = pd.DataFrame({"nll": nll.numpy(), "n": n.numpy(), "genres": films["genres"].values})
    by_genre = df.explode("genres").dropna(subset=["genres"]).groupby("genres")[["nll", "n"]].sum()
    by_genre = by_genre.assign(films=df.explode("genres").groupby("genres").size()).nlargest(top_genres, "films")
    df["bucket"] = pd.cut(df["n"], LENGTH_BUCKETS, right=True)
    by_len = (
        df.groupby("bucket", observed=True)[["nll", "n"]].sum().assign(films=df.groupby("bucket", observed=True).size())
    )
    groups = lambda t: [
        Group(group=str(i), films=int(r.films), tokens=int(r.n), perplexity=math.exp(r.nll / r.n))
        for i, r in t.iterrows()
    ]
    return {"by_genre": groups(by_genre), "by_length": groups(by_len)}


@dataclass
class _Inputs:
    """What every model in an evaluation is scored on (made once in evaluate_run)."""

    cfg: object
    tok: object
    test: pd.DataFrame
    test_ds: object
    val_ds: object
    films: list[dict]
    training_texts: list[str]
    known: set
    how: Sampling
    k: int


def evaluate_run(
    run_dir: Path, n_titles: int = EVAL_TITLES, max_new_tokens: int = 80, seed: int = 0, k: int = 5, log=print
) -> Evaluation:
    """Base against fine-tuned on the run's test films: perplexity (overall, by genre, by length), generation
    quality and faithfulness (moviegpt.eval.similarity) for unseen titles, invented films (are their titles new?), and
    recommendation quality (genre overlap@k) against TF-IDF. Written once to RUN/eval.json, then read back
    (recomputed when asked for with other settings, or when the file is damaged)."""
    run = RunDir(run_dir)
    want = eval_settings(n_titles, max_new_tokens, seed, k)
    if not run.finished:
        raise UserError(f"{run_dir} is not a finished moviegpt run (no summary.json)")
    final = run.summary().final  # read first: a damaged summary is named even when an evaluation is cached
    cfg = load_run_config(run.path)
    splits = movies.load_splits(cfg.data, cfg.seed)
    test, titles = splits.test, splits.test.head(n_titles)
    films_hash = movies.content_hash(test)  # the films as they are now: changed data is scored again
    if (cached := run.evaluation()) is not None and cached.settings == want and cached.films_hash == films_hash:
        return cached
    tok, _ = load_tokenizer(str(run.model_dir))
    per_film = lambda films, what: tokens.scored(films, tok, cfg.text.template, cfg.scored_length, desc=what)
    val = splits.validation
    inputs = _Inputs(
        cfg=cfg,
        tok=tok,
        test=test,
        test_ds=per_film(test, "test films"),
        val_ds=per_film(val, "validation films") if len(val) else None,
        films=titles.to_dict("records"),
        training_texts=splits.train["overview"].tolist(),
        known=movies.known_titles(cfg.data),
        how=Sampling(max_new_tokens=max_new_tokens, seed=seed),
        k=k,
    )
    same = lambda h: h if h is not None and h.films_hash == films_hash else None  # scored by train on these films
    held = {"base": same(run.base_eval()), "fine-tuned": same(final)}
    scored = {}
    for name in MODELS:
        log(f"Evaluating the {name} model...")
        model = load_model(cfg.model, tok, cfg.seed)[0] if name == "base" else load_trained(str(run.model_dir))[0]
        scored[name] = _score(name, model, held[name], inputs)
        if name == "base" and chat.available(tok):
            log("Scoring and prompting the base model in its own chat format...")
            scored[CHAT] = _chat(model, inputs)
        del model
    log("Scoring faithfulness to the real overviews (all-MiniLM-L6-v2)...")
    gens = {m: scored[m]["generated"] for m in scored}
    faithful = similarity.faithfulness(
        titles["overview"].tolist(), {m: [g["text"] for g in gens[m]] for m in scored}, seed
    )
    ev = _record(run.name, want, inputs, scored, faithful, titles["overview"].tolist())
    ev.films_hash = films_hash
    run.write_json(run.eval_json, ev)
    return ev


def _record(run_name: str, want: dict, x: _Inputs, scored: dict, faithful, real_overviews: list[str]) -> Evaluation:
    """eval.json's record from what each model scored."""
    gens, test, k = {m: scored[m]["generated"] for m in MODELS}, x.test, x.k
    real = [{"text": t, "ended_with_eos": True} for t in real_overviews]
    return Evaluation(
        version=EVAL_VERSION,
        run=run_name,
        settings=want,
        test_films=len(test),
        k=k,
        perplexity={m: from_dict(ModelPerplexity, scored[m]["perplexity"]) for m in MODELS},
        generation={"real": from_dict(Quality, quality(real, x.training_texts))}
        | {m: from_dict(Quality, scored[m]["quality"]) for m in MODELS},
        examples=[
            Example(
                title=str(f["title"]),
                real=str(f["overview"]),
                generated={m: Sample(gens[m][i]["text"], gens[m][i]["ended_with_eos"]) for m in MODELS},
            )
            for i, f in enumerate(x.films)
        ],
        recommendation={
            "tf-idf": recommend.genre_overlap_at_k(
                recommend.tfidf(test["overview"].tolist()), test["genres"].tolist(), k
            ),
            "random": recommend.random_overlap(test["genres"].tolist()),
        }
        | {m: scored[m]["overlap"] for m in MODELS},
        concepts={m: scored[m]["concepts"] for m in MODELS},
        neighbours=neighbours(scored["fine-tuned"]["vectors"], test),
        faithfulness=faithful,
        chat=ChatCheck(
            prompt=chat.PROMPT,
            held_out=scored[CHAT]["held_out"],
            generated=[Sample(g["text"], g["ended_with_eos"]) for g in scored[CHAT]["generated"]],
            quality=from_dict(Quality, scored[CHAT]["quality"]),
        )
        if CHAT in scored
        else None,
        validation={m: scored[m]["validation"] for m in MODELS if scored[m]["validation"] is not None},
        similarity_model=f"{similarity.NAME} ({similarity.PACKAGE})",
        measures=measures.versions(),
    )


def _chat(model, x: _Inputs) -> dict:
    """The base model in its chat format (moviegpt.eval.chat): the test films' overviews scored as its answers, and
    an overview asked for each unseen title, sampled the same way as in the template."""
    held = perplexity(model, chat.scored(x.test, x.tok, x.cfg.scored_length + 64), x.cfg.train.eval_batch_size)
    prompts = [chat.prompt(x.tok, str(f["title"])) for f in x.films]
    generated = [
        g | {"title": f["title"]}
        for g, f in zip(sample(model, x.tok, prompts, how=x.how, batch_size=EVAL_BATCH), x.films)
    ]
    return {"held_out": held, "generated": generated, "quality": quality(generated, x.training_texts)}


def _score(name: str, model, held: HeldOut | None, x: _Inputs) -> dict:
    """One model on everything: held-out perplexity (reused from training where it measured the same films),
    generations and their quality, invented films, embeddings and their genre overlap, and (for the fine-tuned
    model) the validation films scored per film, to set beside the validation curve's last point."""
    cfg, test = x.cfg, x.test
    if held is None or held.film_nll is None or len(held.film_nll) != len(test) or held.type_nll is None:
        held = perplexity(model, x.test_ds, cfg.train.eval_batch_size, desc=f"perplexity, {name}")
    nll, n = torch.tensor(held.film_nll, dtype=torch.float64), torch.tensor(held.film_tokens)
    validation = None
    if x.val_ds is not None and name == "fine-tuned":
        validation = perplexity(model, x.val_ds, cfg.train.eval_batch_size, desc=f"validation films, {name}")
    generated = generate_overviews(model, x.tok, x.films, cfg.text.template, how=x.how, batch_size=EVAL_BATCH)
    fields = _concept_fields(cfg.text.template, test)
    invented = concepts(model, x.tok, cfg.text.template, EVAL_CONCEPTS, x.how, x.known, fields=fields)
    vectors = recommend.embed(model, x.tok, test["overview"].tolist(), desc=f"embeddings, {name}")
    return {
        "perplexity": {
            "loss": held.loss,
            "perplexity": held.perplexity,
            "tokens": held.tokens,
            **breakdown(nll, n, test),
        },
        "validation": validation,
        "generated": generated,
        "quality": quality(generated, x.training_texts),
        "concepts": concept_check(invented),
        "vectors": vectors,
        "overlap": recommend.genre_overlap_at_k(vectors, test["genres"].tolist(), x.k),
    }


def concept_check(invented: list[dict]) -> ConceptCheck:
    """The share of invented titles not in the data, over the draws that read as titles at all (a year or a line of
    code is left out, not counted as new)."""
    first = [r for r in invented if r["first_is_title"]]
    final = [r for r in invented if r["is_title"]]
    share = lambda rows, key: float(np.mean([not r[key] for r in rows])) if rows else 0.0
    return ConceptCheck(
        n=len(invented),
        new_first=share(first, "first_title_known"),
        new_final=share(final, "title_known"),
        titles=[r["title"] for r in invented],
        titles_first=len(first),
        titles_final=len(final),
    )


def _concept_fields(template: str, films: pd.DataFrame) -> dict:
    """Fields a template names before the title (e.g. {genres}): taken from the first test film that has them."""
    from moviegpt.core import validate

    head = validate.fields_of(template.split("{title")[0])
    return {f: films[f].iloc[0] for f in head if f in films}


def neighbours(vecs: np.ndarray, films: pd.DataFrame, n: int = 3, k: int = 3) -> list[Neighbour]:
    """For the first n films, their k nearest films (cosine of the embeddings)."""
    label = lambda i: f"{films['title'].iloc[i]} ({', '.join(films['genres'].iloc[i])})"
    return [
        Neighbour(film=label(i), rank=r + 1, neighbour=label(j), similarity=sim)
        for i in range(min(n, len(films)))
        for r, (j, sim) in enumerate(recommend.neighbours(vecs, vecs[i], k, exclude=i))
    ]


def headline(ev: Evaluation) -> dict:
    """The few numbers of eval.json worth printing."""
    keys = ("eos_share", "mean_words", "distinct_2", "repeated_3gram_rate", "longest_copy_words")
    return {
        "run": ev.run,
        "perplexity": {m: round(v.perplexity, 3) for m, v in ev.perplexity.items()},
        "generation": {m: {k: round(getattr(v, k), 3) for k in keys} for m, v in ev.generation.items()},
        "new_concept_titles": {m: round(c.new_final, 3) for m, c in ev.concepts.items()},
        f"genre_overlap@{ev.k}": {m: round(v, 3) for m, v in ev.recommendation.items()},
    }
