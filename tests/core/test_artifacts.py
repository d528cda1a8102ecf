"""moviegpt.core.artifacts: typed records to and from JSON, strict about types, tolerant of keys they do not know."""

import pytest

from moviegpt.core.artifacts import HeldOut, Plan, Summary, code_version, from_dict, to_dict


def held(films: int = 2) -> HeldOut:
    return HeldOut(
        loss=2.0,
        perplexity=7.39,
        tokens=10,
        films=films,
        film_nll=[8.0, 12.0],
        film_tokens=[4, 6],
        type_nll={"overview": [8.0, 12.0]},
        type_tokens={"overview": [4, 6]},
    )


def test_a_record_round_trips_through_its_json_form():
    h = held()
    assert from_dict(HeldOut, to_dict(h)) == h


def test_keys_a_record_does_not_know_are_ignored_and_missing_optional_ones_default():
    old = {k: v for k, v in to_dict(held()).items() if k not in ("type_nll", "type_tokens")} | {"probe": 1}
    back = from_dict(HeldOut, old)
    assert back.type_nll is None and back.film_nll == [8.0, 12.0]


@pytest.mark.parametrize(
    "change, where",
    [({"films": "two"}, "films"), ({"film_nll": 3.0}, "film_nll"), ({"type_nll": [1.0]}, "type_nll")],
)
def test_a_value_of_the_wrong_type_is_named(change, where):
    with pytest.raises(ValueError, match=where):
        from_dict(HeldOut, to_dict(held()) | change)


def test_a_required_field_that_is_missing_is_named():
    d = to_dict(held())
    d.pop("perplexity")
    with pytest.raises(ValueError, match="perplexity"):
        from_dict(HeldOut, d)
    with pytest.raises(ValueError, match="Summary"):
        from_dict(Summary, [])


def test_a_plan_made_before_the_estimate_was_named_reads_with_its_defaults():
    old = {
        "key": "k",
        "machine": "m",
        "budget_minutes": 1.0,
        "probe_seconds": 3.0,
        "step_seconds": 2.0,
        "tokens_per_second": 100.0,
        "eval_seconds": 1.0,
        "max_steps": 10,
        "max_train_rows": None,
        "eval_steps": 5,
        "save_steps": 0,
        "planned_seconds": 30.0,
        "reason": "r",
        "measured_step": 4,
    }
    p = from_dict(Plan, old)
    assert p.estimate_seconds == 0.0 and p.max_steps == 10 and p.warmup_steps == 0


def test_the_code_version_names_the_source_by_hash():
    v = code_version()
    assert set(v) == {"version", "source"} and len(v["source"]) == 12 and v == code_version()
