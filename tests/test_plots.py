"""moviegpt.book.plots: every figure draws from a real smoke run's artifacts, with what its caption promises."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from moviegpt.book import (
    plots,  # noqa: E402
    report,
    results,
)
from moviegpt.core.rundir import RunDir  # noqa: E402


def test_run_figures_draw_from_the_artifacts(smoke_run):
    run = RunDir(smoke_run)
    ev, m = report.evaluation(run), report.metrics_log(run)
    fig, ax = plt.subplots()
    plots.val_perplexity(ax, m, results.perplexity_views(run, ev))
    assert ax.get_yscale() == "linear" and ax.get_ylim()[0] == 0  # no log axis over a narrow range
    curve = ax.lines[0]
    assert curve.get_xdata()[0] == 0  # step 0: the base model
    fig, axes = plt.subplots(1, 2)
    plots.perplexity_breakdown(axes, ev)
    labels = [t.get_text() for t in axes[0].get_yticklabels()]
    assert labels and all(" films)" in t for t in labels)  # every group shows its size
    fig, ax = plt.subplots()
    plots.compare_curves(ax, {"run": m})
    assert ax.get_xlabel() == "tokens trained"
    plt.close("all")


def test_length_buckets_read_as_words():
    assert plots._bucket("(0, 40]") == "1-40" and plots._bucket("(120, 10000]") == "over 120"
    assert plots._bucket("Drama") == "Drama"
