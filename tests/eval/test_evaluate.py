"""moviegpt.eval.evaluate: metrics on hand-made texts with known answers, and the evaluation of a real (smoke) run."""

import json
import math

import numpy as np
import pytest
import torch

from moviegpt.core.artifacts import to_dict
from moviegpt.core.config import TextConfig
from moviegpt.data import movies, tokens
from moviegpt.eval import evaluate, metrics, recommend
from moviegpt.model.causal_lm import load_trained


def test_distinct_n():
    assert metrics.distinct_n(["a b a b"], 1) == 0.5  # 2 unique of 4 words
    assert metrics.distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)  # (a b), (b a), (a b)
    assert metrics.distinct_n(["A b.", "a B"], 1) == 0.5  # case and punctuation do not count
    assert metrics.distinct_n([""], 2) == 0.0


def test_repeated_ngram_rate():
    assert metrics.repeated_ngram_rate("one two three four five") == 0.0
    assert metrics.repeated_ngram_rate("a b c a b c a b c") == pytest.approx(4 / 7)  # 7 trigrams, 3 unique
    assert metrics.repeated_ngram_rate("too short") == 0.0


def test_copy_index_finds_the_longest_shared_run():
    idx = metrics.CopyIndex(["a young wizard goes to a school of magic", "two cops chase a thief across town"])
    assert idx.longest("in this film a young wizard goes to war") == 5  # "a young wizard goes to"
    assert idx.longest("two cops chase a thief across town") == 7  # a verbatim copy
    assert idx.longest("nothing here matches at all") == 0


def test_generation_quality_summary():
    gens = [{"text": "a b c", "ended_with_eos": True}, {"text": "a b c a b c", "ended_with_eos": False}]
    q = metrics.generation_quality(gens, metrics.CopyIndex(["x a b c y"]))
    assert q["eos_share"] == 0.5 and q["mean_words"] == 4.5 and q["words"] == [3, 6]
    assert q["longest_copy_words"] == 3 and q["copy_share"] == pytest.approx((1 + 0.5) / 2)


def test_token_weighted_perplexity_is_exp_of_mean_token_loss(smoke_run, gpt2_tok):
    model, _, _ = load_trained(str(smoke_run / "model"))
    films = movies.normalise(movies.read_table("bundled")).dropna(subset=["overview"]).head(7)  # odd: unequal batches
    ds = tokens.tokenize(films, gpt2_tok, TextConfig(batching="pad", max_length=128))
    got = evaluate.perplexity(model, ds, batch_size=3)
    losses, count = [], 0
    with torch.no_grad():  # one film at a time, no padding: the plain definition
        for ids, mask in zip(ds["input_ids"], ds["attention_mask"]):
            ids = torch.tensor(ids[: sum(mask)])[None]
            losses.append(model(input_ids=ids, labels=ids).loss.item() * (ids.shape[1] - 1))
            count += ids.shape[1] - 1
    assert got.tokens == count
    assert got.perplexity == pytest.approx(math.exp(sum(losses) / count), rel=1e-4)


def test_recommendation_returns_the_film_itself_first(smoke_run):
    model, tok, _ = load_trained(str(smoke_run / "model"))
    films = movies.normalise(movies.read_table("bundled")).dropna(subset=["overview"]).head(30)
    rec = recommend.Recommender(model, tok, films)
    target = films.iloc[7]
    table = rec.by_text(target["overview"], k=3)
    assert table["title"].iloc[0] == target["title"] and table["similarity"].iloc[0] == pytest.approx(1, abs=1e-4)
    same, found = rec.by_title(target["title"].upper(), k=3)
    assert found and target["title"] not in same["title"].tolist()  # a title query excludes the film itself
    _, found = rec.by_title("A Film That Does Not Exist", k=3)
    assert not found


def test_genre_overlap_at_k_on_hand_made_embeddings():
    vecs = np.eye(4, dtype=np.float32)
    vecs[1] = vecs[0] * 0.9 + vecs[1] * 0.1  # film 1 is closest to film 0
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    genres = [["Drama"], ["Drama"], ["Comedy"], ["Horror"]]
    # with k=1: films 0 and 1 find each other (shared genre); films 2 and 3 find a film of another genre
    assert recommend.genre_overlap_at_k(vecs, genres, k=1) == 0.5
    assert recommend.random_overlap(genres) == pytest.approx((1 / 3 + 1 / 3 + 0 + 0) / 4)


def test_evaluate_run_writes_eval_json(smoke_run):
    ev = evaluate.evaluate_run(smoke_run, n_titles=4, max_new_tokens=20, log=lambda m: None)
    on_disk = json.loads((smoke_run / "eval.json").read_text())
    assert on_disk == json.loads(json.dumps(to_dict(ev)))
    summary = smoke_run.summary()
    # the same token-weighted measure as the run's summary, on the same test films
    assert ev.perplexity["fine-tuned"].perplexity == pytest.approx(summary.final.perplexity, rel=1e-3)
    assert ev.perplexity["base"].perplexity == pytest.approx(summary.base.perplexity, rel=1e-3)
    assert sum(b.films for b in ev.perplexity["fine-tuned"].by_length) == ev.test_films
    assert set(ev.generation) == {"real", "base", "fine-tuned"} and 0 <= ev.generation["base"].eos_share <= 1
    assert len(ev.examples) == 4 and set(ev.examples[0].generated) == {"base", "fine-tuned"}
    assert set(ev.recommendation) == {"tf-idf", "random", "base", "fine-tuned"}
    assert all(0 <= v <= 1 for v in ev.recommendation.values())
    assert all(c.n > 0 and 0 <= c.new_first <= c.new_final <= 1 for c in ev.concepts.values())  # redraws only help
    assert len(ev.neighbours) == 9 and all(n.film != n.neighbour for n in ev.neighbours)


def test_recomputing_the_evaluation_gives_identical_numbers(smoke_run, tmp_path):
    """The book's numbers come from eval.json; computing it again (a re-run chapter, a cleared run) is seeded."""
    first = evaluate.evaluate_run(smoke_run, n_titles=3, max_new_tokens=12, log=lambda m: None)
    (smoke_run / "eval.json").rename(tmp_path / "eval.json")
    second = evaluate.evaluate_run(smoke_run, n_titles=3, max_new_tokens=12, log=lambda m: None)
    assert second == first  # every perplexity, generated text and overlap, exactly


def test_a_damaged_eval_json_is_recomputed(run_copy):
    from moviegpt.eval import evaluate

    first = evaluate.evaluate_run(run_copy.path, n_titles=2, max_new_tokens=6, log=lambda m: None)
    run_copy.eval_json.write_text(run_copy.eval_json.read_text()[:100])
    assert evaluate.evaluate_run(run_copy.path, n_titles=2, max_new_tokens=6, log=lambda m: None) == first


def test_the_split_by_token_type_adds_up_to_each_films_loss_exactly(smoke_run, gpt2_tok):
    """A real tiny run's held-out record: per film, the NLL and targets of the template, title, overview, other
    fields and end-of-text token add up to the film's own, so each group's perplexity is a true part of the whole."""
    import math

    import numpy as np

    from moviegpt.core.rundir import RunDir
    from moviegpt.data.tokens import TOKEN_TYPES

    for h in (RunDir(smoke_run).summary().final, RunDir(smoke_run).summary().base):
        assert set(h.type_nll) == set(TOKEN_TYPES) == set(h.type_tokens)
        nll = np.sum([h.type_nll[k] for k in TOKEN_TYPES], axis=0)
        n = np.sum([h.type_tokens[k] for k in TOKEN_TYPES], axis=0)
        assert n.tolist() == h.film_tokens  # every target is of exactly one type
        assert np.allclose(nll, h.film_nll, rtol=1e-9, atol=1e-6)
        assert math.exp(nll.sum() / n.sum()) == pytest.approx(h.perplexity, rel=1e-9)
        assert set(h.type_tokens["eos"]) <= {0, 1} and sum(h.type_tokens["eos"]) > h.films / 2  # one end-of-text
        # target a film, unless the film was cut at the scoring length before it
        assert all(t > 0 for t in h.type_tokens["overview"]) and all(t > 0 for t in h.type_tokens["title"])
