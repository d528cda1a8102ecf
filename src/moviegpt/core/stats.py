"""Uncertainty: 95% intervals for the numbers a reader compares, from the per-film values a run stores.

Perplexities and their ratios get a percentile bootstrap over films: the test films are drawn with replacement
RESAMPLES times by one generator seeded with SEED, and the statistic is recomputed on each draw (token-weighted,
as the point estimate is). Two models scored on the same films are resampled with the same draws (paired), so
the interval of their ratio reflects the films, not two independent samples. Means over generated texts get
the same bootstrap over titles; shares (a text ended with EOS, a title is new) get Wilson's score interval,
which stays honest at 0% and 100% where a bootstrap collapses to a point. Same inputs, same intervals.
Plain numpy: importing this module loads no model library.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SEED = 0  # one seeded resampling for the whole book: a rebuild gives the same intervals
RESAMPLES = 2000
LEVEL = 0.95
Z = 1.959963984540054  # the standard normal's 97.5% quantile, for Wilson's interval


@dataclass(frozen=True)
class Interval:
    value: float  # the point estimate, computed on all the data
    lo: float
    hi: float
    n: int  # films or titles it rests on

    def __format__(self, spec: str) -> str:
        """`f"{iv:.2f}"` -> "35.36 (95% CI 33.10–37.80)"."""
        spec = spec or ".3g"
        show = lambda x: format(
            0.0 if float(format(x, spec).rstrip("%").replace(",", "")) == 0 else x, spec
        )  # no -0.00
        return f"{show(self.value)} (95% CI {show(self.lo)}–{show(self.hi)})"

    def excludes(self, x: float) -> bool:
        return x < self.lo or x > self.hi


def draws(n: int, seed: int = SEED, resamples: int = RESAMPLES) -> np.ndarray:
    """(resamples, n) indices into n items, drawn with replacement; the same for the same n and seed."""
    if n < 1:
        raise ValueError("an interval needs at least one item")
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def _percentiles(samples: np.ndarray) -> tuple[float, float]:
    tail = (1 - LEVEL) / 2 * 100
    lo, hi = np.percentile(samples, [tail, 100 - tail])
    return float(lo), float(hi)


def perplexity(nll, tokens, seed: int = SEED) -> Interval:
    """exp(sum of NLL / sum of target tokens) over films, with a bootstrap over the films."""
    nll, tokens = np.asarray(nll, dtype=float), np.asarray(tokens, dtype=float)
    idx = draws(len(nll), seed)
    boot = np.exp(nll[idx].sum(1) / tokens[idx].sum(1))
    return Interval(math.exp(nll.sum() / tokens.sum()), *_percentiles(boot), len(nll))


def perplexity_ratio(nll_a, tokens_a, nll_b, tokens_b, seed: int = SEED) -> Interval:
    """Perplexity of B over perplexity of A on the same films (paired draws); below 1: B is better."""
    nll_a, nll_b = np.asarray(nll_a, dtype=float), np.asarray(nll_b, dtype=float)
    tokens_a, tokens_b = np.asarray(tokens_a, dtype=float), np.asarray(tokens_b, dtype=float)
    if len(nll_a) != len(nll_b):
        raise ValueError(f"a paired ratio needs the same films ({len(nll_a)} against {len(nll_b)})")
    idx = draws(len(nll_a), seed)
    log_ratio = lambda i: nll_b[i].sum(-1) / tokens_b[i].sum(-1) - nll_a[i].sum(-1) / tokens_a[i].sum(-1)
    return Interval(math.exp(log_ratio(np.arange(len(nll_a)))), *_percentiles(np.exp(log_ratio(idx))), len(nll_a))


def mean(values, seed: int = SEED) -> Interval:
    """The mean of per-item values (per title: words, copied run, similarity), with a bootstrap over items."""
    v = np.asarray(values, dtype=float)
    return Interval(float(v.mean()), *_percentiles(v[draws(len(v), seed)].mean(1)), len(v))


def mean_difference(a, b, seed: int = SEED) -> Interval:
    """mean(b) - mean(a) for values paired item by item (the same titles), with paired draws."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) != len(b):
        raise ValueError(f"a paired difference needs the same items ({len(a)} against {len(b)})")
    d = b - a
    return Interval(float(d.mean()), *_percentiles(d[draws(len(d), seed)].mean(1)), len(d))


def share(flags) -> Interval:
    """The share of true flags, with Wilson's score interval."""
    f = np.asarray(flags, dtype=bool)
    return wilson(int(f.sum()), len(f))


def wilson(k: int, n: int) -> Interval:
    """k successes in n trials: the share, with Wilson's score interval."""
    if n < 1:
        raise ValueError("an interval needs at least one item")
    p = k / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z / (1 + Z * Z / n) * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half), n)


# Student's t, 97.5% quantiles by degrees of freedom: the interval across a handful of training seeds
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def across_seeds(log_values) -> Interval:
    """exp of the mean of per-seed log values (a log perplexity, a log ratio), with Student's t 95% interval for
    that mean: where the mean over many training seeds would lie, which a bootstrap over films cannot say (it is not
    the range one more seed would fall in, which is wider). One seed has no interval (its bounds are the value
    itself; words.seeds_ci says so)."""
    v = np.asarray(log_values, dtype=float)
    m = float(v.mean())
    if len(v) < 2:
        return Interval(math.exp(m), math.exp(m), math.exp(m), len(v))
    half = T975.get(len(v) - 1, Z) * float(v.std(ddof=1)) / math.sqrt(len(v))
    return Interval(math.exp(m), math.exp(m - half), math.exp(m + half), len(v))
