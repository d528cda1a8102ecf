"""moviegpt.book.performance: the committed benchmark results as the Performance chapter reads them."""

import pytest
from conftest import PROJECT_ROOT as ROOT

from moviegpt.book import performance as perf
from moviegpt.core import mfu


@pytest.fixture(scope="module")
def res():
    return perf.results(ROOT)


def test_every_mfu_names_its_rule(res):
    for name in perf.throughput_runs(res):
        cols = perf.throughput_table(res[name]).columns
        assert perf.MEASURED_RULE in cols and "MFU" not in cols
        assert (perf.SPEC_RULE in cols) == bool(mfu.spec_peak(res[name]["machine"].get("gpu")))


def test_llmc_rule_against_its_published_arithmetic(res):
    assert mfu.llmc_flops_per_token(124_439_808, 12, 768, 1024) == pytest.approx(8.03e8, rel=1e-3)
    assert mfu.spec_peak("NVIDIA H100 80GB HBM3") == 989e12 and mfu.spec_peak("AMD EPYC") is None
    gpu = res["train_throughput_gpu"]
    ours = next(r for r in gpu["throughput"] if r["recipe"] == "ours")
    expected = (
        ours["useful_tokens_per_s"] * mfu.llmc_flops_per_token(gpu["parameters"], 12, 768, ours["seq_len"]) / 989e12
    )
    assert perf.throughput_numbers(gpu)["ours_mfu_spec"] == pytest.approx(expected)


def test_recipe_facts_come_from_the_result_files(res):
    cpu = perf.recipe_numbers(res["train_throughput"], "cpu_")
    base = dict(o.split("=", 1) for o in res["train_throughput"]["recipes"]["base"])
    assert cpu["cpu_layers"] == base["model.n_layer"] and cpu["cpu_orig_max_length"] == base["text.max_length"]
    ttq = perf.recipe_numbers(res["train_throughput"], "ttq_", kind="quality")
    assert ttq["ttq_ours_learning_rate"] != ttq["ttq_orig_learning_rate"]


def test_external_references_are_labelled_with_sources(res):
    table = perf.external_table(res["external_references"])
    assert len(table) >= 2 and table["source"].str.startswith("https://").all()
    assert "Not measured here" in res["external_references"]["note"]


def test_an_ablation_is_found_by_the_setting_it_undoes_not_by_its_label(res):
    gpu = res["train_throughput_gpu"]
    rows = {r["recipe"]: r["useful_tokens_per_s"] for r in gpu["throughput"]}
    unaligned = next(n for n, s in gpu["recipes"]["variants"].items() if "train.vocab_multiple=1" in s)
    assert perf.undoing(gpu, "train.vocab_multiple") == pytest.approx(rows["ours"] / rows[unaligned])
    with pytest.raises(KeyError, match="0 measured recipes"):
        perf.undoing(gpu, "model.dropout")  # defined in the recipes, not measured in this result
