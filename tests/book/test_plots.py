"""moviegpt.book.plots: every figure draws from a real smoke run's artifacts, with what its caption promises."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from moviegpt.book import plots, records  # noqa: E402
from moviegpt.core.rundir import RunDir  # noqa: E402


def test_run_figures_draw_from_the_artifacts(smoke_run):
    run = RunDir(smoke_run)
    ev, m = records.evaluation(run), records.metrics_log(run)
    fig, ax = plt.subplots()
    plots.losses(ax, m)
    assert ax.get_yscale() == "linear" and ax.lines[1].get_xdata()[0] == 0  # the validation curve: step 0 first
    fig, axes = plt.subplots(1, 2)
    plots.perplexity_breakdown(axes, ev)
    labels = [t.get_text() for t in axes[0].get_yticklabels()]
    assert labels and all(" films)" in t for t in labels)  # every group shows its size
    plt.close("all")


def test_log_axes_of_tokens_read_as_plain_numbers():
    fig, ax = plt.subplots()
    ax.plot([1500, 62000], [30, 28])
    ax.set_xscale("log")
    plots.log_tokens(ax)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels and all("^" not in t and "$" not in t for t in labels) and "10k" in labels  # not 10^4
    plt.close("all")


def test_length_buckets_read_as_words():
    assert plots._bucket("(0, 40]") == "1-40" and plots._bucket("(120, 10000]") == "over 120"
    assert plots._bucket("Drama") == "Drama"
