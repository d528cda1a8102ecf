"""moviegpt.core.stats: the book's intervals, checked against a direct computation on a real tiny run."""

import math

import numpy as np
import pytest

from moviegpt.book import records
from moviegpt.core import stats
from moviegpt.core.rundir import RunDir


def direct_bootstrap(nll, n, seed, resamples, statistic):
    """The percentile bootstrap written out loop by loop, with the same generator and draws as moviegpt.core.stats."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(nll), size=(resamples, len(nll)))
    values = [statistic(idx[b]) for b in range(resamples)]
    return np.percentile(values, [2.5, 97.5])


def test_perplexity_intervals_match_a_direct_bootstrap_on_a_real_run(smoke_run):
    s = RunDir(smoke_run).summary()
    b, f = s.base, s.final
    ppl = lambda h, i: math.exp(sum(h.film_nll[j] for j in i) / sum(h.film_tokens[j] for j in i))
    for h in (b, f):
        iv = stats.perplexity(h.film_nll, h.film_tokens)
        lo, hi = direct_bootstrap(h.film_nll, h.film_tokens, stats.SEED, stats.RESAMPLES, lambda i, h=h: ppl(h, i))
        assert iv.lo == pytest.approx(lo, rel=1e-9) and iv.hi == pytest.approx(hi, rel=1e-9)
        assert iv.value == pytest.approx(h.perplexity, rel=1e-9) and iv.lo <= iv.value <= iv.hi
    ratio = stats.perplexity_ratio(b.film_nll, b.film_tokens, f.film_nll, f.film_tokens)
    lo, hi = direct_bootstrap(b.film_nll, b.film_tokens, stats.SEED, stats.RESAMPLES, lambda i: ppl(f, i) / ppl(b, i))
    assert ratio.lo == pytest.approx(lo, rel=1e-9) and ratio.hi == pytest.approx(hi, rel=1e-9)
    assert ratio.value == pytest.approx(f.perplexity / b.perplexity, rel=1e-9)


def test_same_seed_same_interval_and_another_seed_another(smoke_run):
    h = RunDir(smoke_run).summary().final
    assert stats.perplexity(h.film_nll, h.film_tokens) == stats.perplexity(h.film_nll, h.film_tokens)
    assert stats.perplexity(h.film_nll, h.film_tokens, seed=1) != stats.perplexity(h.film_nll, h.film_tokens)


def test_a_run_whose_films_all_improved_has_a_ratio_interval_below_one(smoke_run):
    run = RunDir(smoke_run)
    s = run.summary()
    per_film = lambda h: np.array(h.film_nll) / np.array(h.film_tokens)
    assert (per_film(s.final) < per_film(s.base)).all()  # the smoke run improves every test film
    iv = records.held_out(run)
    assert iv["ratio"].hi < 1 and iv["improved"].value == 1.0
    assert iv["improved"].lo < 1  # Wilson's interval stays honest at 100%


def test_a_paired_ratio_is_narrower_than_its_parts_suggest():
    """Two models whose per-film losses move together: pairing removes the films' own spread."""
    rng = np.random.default_rng(5)
    tokens = rng.integers(20, 120, size=64)
    hardness = rng.normal(4.0, 0.6, size=64)
    nll_a, nll_b = hardness * tokens, (hardness - 0.3) * tokens
    ratio = stats.perplexity_ratio(nll_a, tokens, nll_b, tokens)
    assert ratio.value == pytest.approx(math.exp(-0.3)) and ratio.hi - ratio.lo < 1e-9  # the same shift on every film
    a = stats.perplexity(nll_a, tokens)
    assert a.hi - a.lo > 1  # while each perplexity alone varies with the films drawn
    with pytest.raises(ValueError):
        stats.perplexity_ratio(nll_a, tokens, nll_b[:10], tokens[:10])


def test_wilson_interval_against_its_formula():
    iv = stats.wilson(8, 8)
    assert iv.value == 1.0 and iv.hi == 1.0 and iv.lo == pytest.approx(8 / (8 + 1.959963984540054**2))
    assert stats.share([True, False, True, False]) == stats.wilson(2, 4)
    mid = stats.wilson(16, 32)
    assert mid.lo == pytest.approx(1 - mid.hi) and 0.32 < mid.lo < 0.34  # symmetric at one half
    assert f"{stats.wilson(1, 4):.0%}" == "25% (95% CI 5%–70%)"
