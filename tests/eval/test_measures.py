"""moviegpt.eval.measures: the shipped evaluate modules, loaded by path with evaluate.load (offline), against the
plain functions they wrap and the numbers eval.json holds."""

import json
import math

import evaluate
import numpy as np
import pytest

from moviegpt.eval import measures, metrics


def test_token_perplexity_is_exp_of_the_token_weighted_mean_loss():
    ppl = evaluate.load(measures.path("token_perplexity"))
    nll, tokens = [2.0, 30.0, 1.5], [1, 10, 3]
    r = ppl.compute(nll=nll, tokens=tokens)
    assert r["loss"] == pytest.approx(sum(nll) / sum(tokens)) and r["perplexity"] == pytest.approx(math.exp(33.5 / 14))
    per_text = np.mean([math.exp(a / b) for a, b in zip(nll, tokens)])  # the hub module's average: not this
    assert abs(r["perplexity"] - per_text) > 0.1
    assert "token" in ppl.description and ppl.citation


def test_generation_quality_matches_the_plain_functions_and_combines():
    texts = ["a man finds a dog and a dog finds a man", "she sails to the sea"]
    q = evaluate.load(measures.path("generation_quality"))
    r = q.compute(predictions=texts, ended_with_eos=[True, False], training_texts=["a dog finds a bone"])
    assert r["eos_share"] == 0.5 and r["distinct_2"] == metrics.distinct_n(texts, 2)
    assert r["longest_copy_words"] == np.mean([metrics.CopyIndex(["a dog finds a bone"]).longest(t) for t in texts])
    both = evaluate.combine([measures.path(n) for n in measures.NAMES])
    out = both.compute(nll=[3.0], tokens=[2], predictions=texts, ended_with_eos=[True, True])
    assert out["perplexity"] == pytest.approx(math.exp(1.5)) and out["eos_share"] == 1.0


def test_a_run_evaluation_is_computed_through_the_modules_and_names_them(smoke_run):
    from moviegpt.eval.evaluate import evaluate_run

    ev = evaluate_run(smoke_run.path, log=lambda m: None)
    assert set(ev.measures) == set(measures.NAMES) and all(v for v in ev.measures.values())
    saved = json.loads((smoke_run / "eval.json").read_text())
    assert saved["measures"] == ev.measures
    nll, n = ev.perplexity, smoke_run.summary().final
    direct = measures.load("token_perplexity").compute(nll=n.film_nll, tokens=n.film_tokens)
    assert ev.perplexity["fine-tuned"].perplexity == pytest.approx(direct["perplexity"])
    assert nll["fine-tuned"].tokens == direct["tokens"]
