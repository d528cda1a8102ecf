"""How the book says a number: one helper for an interval, one for a verdict, one for glue, and the two table styles.

Every text taken from an artifact (a run's name, a machine, a title, a generated overview) reaches a page through
`glue_all` (a text node, escaped by the HTML writer) or a table styled here (every cell escaped): nothing from an
artifact is live markup on a page.
"""

from __future__ import annotations

import pandas as pd

from moviegpt.core import stats


def ci(iv: stats.Interval, spec: str = ",.2f") -> str:
    """ "33.90 (95% CI 30.52–38.07)": the interval's own format (stats.Interval.__format__)."""
    return format(iv, spec)


def seeds_ci(iv: stats.Interval, spec: str = ",.2f") -> str:
    """ "33.90 (95% CI for the mean over 3 seeds 30.52–38.07)", or "31.09 (one seed, no interval)": an interval
    across training seeds (stats.across_seeds) says what it is, and one seed is not dressed up as an interval."""
    if iv.n < 2:
        return f"{format(iv.value, spec)} (one seed, no interval)"
    return f"{format(iv.value, spec)} (95% CI for the mean over {iv.n} seeds {span(iv, spec)})"


def span(iv: stats.Interval, spec: str = ",.2f") -> str:
    """ "30.52–38.07": the bounds alone, for a table column headed "95% CI"."""
    return f"{format(iv.lo, spec)}–{format(iv.hi, spec)}"


def verdict(
    iv: stats.Interval,
    none: float = 1.0,
    above: str = "higher than",
    below: str = "lower than",
    neither: str = "not measurably different from",
) -> str:
    """Words for a compared number: which way it went when its interval excludes `none` (1 for a ratio, 0 for a
    difference), else that the two are not measurably different."""
    return above if iv.lo > none else below if iv.hi < none else neither


def glue_all(facts: dict) -> None:
    """Every glue call of the book: each fact under its name, hidden from the cell's output. A page shows a glued
    text as a text node, which the HTML writer escapes; a number is glued as it is, so the page's format applies."""
    from myst_nb import glue

    for key, value in facts.items():
        glue(key, value, display=False)


def texts(df: pd.DataFrame):
    """A table of whole texts: nothing cut, newlines kept, left-aligned, no index column, every cell and label
    escaped."""
    return (
        escaped(df.style.hide(axis="index"))
        .format(na_rep="", escape="html")  # generated text is data, never markup
        .set_properties(**{"white-space": "pre-wrap", "text-align": "left", "vertical-align": "top"})
        .set_table_styles([{"selector": "th", "props": [("text-align", "left")]}])
    )


def numbers(df: pd.DataFrame, digits: int = 2):
    """A table of numbers with thousands separators, every text cell and label escaped."""
    return escaped(df.style).format(precision=digits, thousands=",", na_rep="", escape="html")


def escaped(styler):
    """A table's row and column labels escaped too (a run's folder name can head a column)."""
    return styler.format_index(escape="html", axis=0).format_index(escape="html", axis=1)
