"""The book's figures, one function each: it draws on an `ax` the chapter's cell owns and returns nothing.

No global state changes on import; a chapter calls `style()` once to get the book's look.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from moviegpt.core.artifacts import Evaluation

BLUE, RED, GREEN, PURPLE, GREY = "#4C72B0", "#C44E52", "#55A868", "#8172B2", "#C8C8C8"
STYLE = {
    "figure.figsize": (7, 3.6),
    "figure.dpi": 110,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
}


def style() -> None:
    """The book's look (matplotlib rcParams) and whole table cells in pandas, for the calling notebook."""
    import matplotlib.pyplot as plt

    plt.rcParams.update(STYLE)
    pd.set_option("display.max_colwidth", None)


def losses(ax, metrics: pd.DataFrame) -> None:
    tr, ev = metrics[metrics["kind"] == "train"], metrics[metrics["kind"] == "eval"]
    ax.plot(tr["step"], tr["loss"], label="training loss", color=BLUE)
    if len(ev):
        ax.plot(ev["step"], ev["eval_loss"], "o-", label="validation loss", color=RED)
    ax.set(xlabel="optimizer step", ylabel="cross-entropy (nats/token)")
    ax.legend()


def length_histogram(ax, lengths: np.ndarray, limit: int = 128) -> None:
    ax.hist(lengths, bins=60, color=BLUE)
    ax.axvline(limit, color=RED, ls="--", label=f"{limit}-token limit of the report's recipe")
    ax.set(xlabel="overview length (GPT-2 tokens)", ylabel="films")
    ax.legend()


def genres(ax, counts: pd.Series, top: int = 20) -> None:
    counts = counts.head(top)[::-1]
    ax.barh(counts.index, counts.values, color=GREEN)
    ax.set(xlabel="films (a film counts once per genre)")


def years(ax, films: pd.DataFrame) -> None:
    y = films["year"].dropna().astype(int)
    ax.hist(y, bins=range(y.min(), y.max() + 2) if len(y) else 10, color=PURPLE)
    ax.set(xlabel="release year", ylabel="films")


def batching(ax, stats: dict) -> None:
    modes = ["pad", "pack"]
    useful = np.array([stats[m]["real_tokens"] for m in modes])
    padding = np.array([stats[m]["padding_tokens"] for m in modes])
    lost = np.array([stats["pad"]["truncated_tokens"], stats["pack"]["dropped_tail_tokens"]])
    labels = [f"pad to {stats['pad']['slots'] // max(stats['films'], 1)}", "pack"]
    ax.barh(labels, useful, color=GREEN, label="trained-on tokens")
    ax.barh(labels, padding, left=useful, color=GREY, label="padding (computed, then ignored)")
    ax.barh(labels, lost, left=useful + padding, color=RED, label="cut off (truncated / last partial block)")
    ax.set(xlabel="tokens")
    ax.xaxis.set_major_formatter("{x:,.0f}")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=3, fontsize=8, frameon=False)


def perplexity_breakdown(axes, ev: Evaluation) -> None:
    """Two panels: by genre and by length, base against fine-tuned; each group labelled with its number of films."""
    for ax, key, title in zip(axes, ("by_genre", "by_length"), ("by genre", "by length (tokens)")):
        tuned = getattr(ev.perplexity["fine-tuned"], key)
        y = np.arange(len(tuned))
        for off, m, color in ((-0.2, "base", GREY), (0.2, "fine-tuned", BLUE)):
            by = {g.group: g.perplexity for g in getattr(ev.perplexity[m], key)}
            ax.barh(y + off, [by.get(g.group, np.nan) for g in tuned], height=0.4, color=color, label=m)
        ax.set(
            yticks=y,
            yticklabels=[f"{_bucket(g.group)} ({g.films:,} films)" for g in tuned],
            xlabel="held-out perplexity",
            title=title,
        )
        ax.invert_yaxis()
    axes[0].figure.legend(
        *axes[0].get_legend_handles_labels(), loc="lower center", ncol=2, fontsize=8, bbox_to_anchor=(0.5, -0.02)
    )
    axes[0].figure.tight_layout(rect=(0, 0.06, 1, 1))


def _bucket(label: str) -> str:
    """A length bucket's interval label, "(40, 80]", as words: "41-80"; the last, open-ended one as "over 120"."""
    if not label.startswith("("):
        return label
    lo, hi = (int(float(x)) for x in label.strip("(]").split(","))
    return f"over {lo}" if hi >= 10_000 else f"{lo + 1}-{hi}"


def generation_lengths(ax, ev: Evaluation) -> None:
    names = ("real", "base", "fine-tuned")
    ax.boxplot(
        [ev.generation[k].words for k in names], tick_labels=["real overviews", "base", "fine-tuned"], vert=False
    )
    ax.set(xlabel="words per overview")


def throughput(ax, rows: list[dict]) -> None:
    names = [r["recipe"] for r in rows][::-1]
    ax.barh(names, [r["tokens_per_s"] for r in rows][::-1], color="#DDDDDD", label="all tokens (padding included)")
    ax.barh(names, [r["useful_tokens_per_s"] for r in rows][::-1], color=BLUE, label="useful tokens")
    ax.set(xlabel="tokens per second")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=8, frameon=False)


def log_tokens(ax) -> None:
    """A log axis of token counts with plain, readable ticks (2k, 5k, 10k, 20k, ...) instead of powers of ten."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    lo, hi = ax.get_xlim()
    ticks = [m * 10**e for e in range(2, 10) for m in (1, 2, 5) if lo <= m * 10**e <= hi]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(
        FuncFormatter(lambda x, _: f"{x / 1e6:g}M" if x >= 1e6 else f"{x / 1e3:g}k" if x >= 1e3 else f"{x:g}")
    )


ARM_COLORS = {
    "original": GREY,
    "eos": "#D35400",
    "pack": PURPLE,
    "apart": GREEN,
    "ours": BLUE,
    "lora": RED,
}


def study_curves(ax, curves: dict[str, pd.DataFrame], marks: list[dict] | None = None, ylabel: str = "") -> None:
    """Each arm's validation curve against tokens trained (log axis): the geometric mean over its seeds as a line,
    the seeds' range as a band; `marks` (this build's runs: run, arm, tokens, ppl) as labelled points."""
    for arm, c in curves.items():
        color = ARM_COLORS.get(arm, "#7F8C8D")
        c = c[c["tokens"] > 0]
        ax.plot(c["tokens"], c["perplexity"], "o-", ms=3, color=color, label=arm)
        ax.fill_between(c["tokens"], c["low"], c["high"], color=color, alpha=0.2, lw=0)
    for m in marks or []:
        ax.plot(m["tokens"], m["ppl"], "*", ms=12, mec="black", color=ARM_COLORS.get(m["arm"], "#7F8C8D"))
        ax.annotate(m["run"], (m["tokens"], m["ppl"]), textcoords="offset points", xytext=(6, 6), fontsize=7)
    ax.set_xscale("log")
    log_tokens(ax)
    ax.set(xlabel="tokens trained (log scale)", ylabel=ylabel or "validation perplexity, overview tokens")
    ax.legend(fontsize=7, ncol=3)


def perplexity_vs_tokens(ax, points: list[dict], base_ppl: float) -> None:
    """Held-out perplexity against tokens trained, each run a point with its 95% interval: this build's runs
    filled, reference runs (made elsewhere) hollow; the base model as a line."""
    for p, color in zip(points, (BLUE, RED, GREEN, PURPLE, "#D35400", "#7F8C8D")):
        err = [[p["ppl"] - p["lo"]], [p["hi"] - p["ppl"]]]
        face = color if p["this_build"] else "white"
        label = p["run"] + ("" if p["this_build"] else " (reference, not this build)")
        ax.errorbar(p["tokens"], p["ppl"], yerr=err, fmt="o", color=color, mfc=face, ms=7, capsize=3, label=label)
    ax.axhline(base_ppl, color="#999999", ls=":", lw=1, label="base model, before training")
    ax.set_xscale("log")
    ax.set_xlim(min(p["tokens"] for p in points) / 1.5, max(p["tokens"] for p in points) * 1.5)
    log_tokens(ax)
    ax.set(xlabel="tokens trained (log scale)", ylabel="held-out perplexity, the same films")
    ax.legend(fontsize=8)


def run_throughput(ax, metrics: pd.DataFrame) -> None:
    """Tokens/s (left) and MFU (right) of each interval between training logs, against the step it ended at."""
    if "tokens_per_second" not in metrics:  # a run made before the loop logged its throughput
        ax.text(0.5, 0.5, "this run logged no throughput", ha="center", va="center", transform=ax.transAxes)
        return
    tr = metrics[(metrics["kind"] == "train") & metrics["tokens_per_second"].notna()]
    ax.plot(tr["step"], tr["tokens_per_second"], "o-", color=BLUE, ms=3)
    ax.set(xlabel="step", ylabel="tokens/s since the last log", ylim=(0, None))
    if "mfu" in tr and tr["mfu"].notna().any():  # MFU is tokens/s times a constant: the same curve, a second scale
        per_token = (tr["mfu"] / tr["tokens_per_second"]).median()
        ax.twinx().set(ylabel="MFU (%)", ylim=(0, 100 * per_token * ax.get_ylim()[1]))
