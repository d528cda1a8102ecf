import pytest

from moviegpt import UserError, load_config
from moviegpt.settings import load_run_config, profiles


def test_profiles_load_and_differ():
    assert {"smoke", "seed", "full"} <= set(profiles())
    seed, full = load_config("seed"), load_config("full")
    # seed is the report's recipe, setting for setting
    assert (seed.model.name, seed.data.source, seed.text.batching, seed.text.max_length) == (
        "gpt2",
        "wykonos/movies",
        "pad",
        128,
    )
    assert (
        seed.train.epochs,
        seed.train.batch_size,
        seed.train.save_steps,
        seed.train.save_total_limit,
        seed.train.logging_steps,
        seed.train.precision,
    ) == (2, 4, 200, 1, 50, "fp16")
    assert full.text.batching == "pack" and full.train.keep_best
    assert seed.run_name != full.run_name


def test_overrides_change_the_hash_and_are_typed():
    a = load_config("smoke")
    b = load_config("smoke", ["train.learning_rate=1e-4", "data.max_train_rows=10"])
    assert b.train.learning_rate == 1e-4 and b.data.max_train_rows == 10
    assert a.hash() != b.hash()
    assert load_config("smoke", ["runs_dir=/elsewhere"]).hash() == a.hash()  # where a run is written is not what it is


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("train.learnig_rate=1", "did you mean 'train.learning_rate'"),
        ("trian.epochs=1", "did you mean 'train.epochs'"),
        ("train.batch_size=0", "train.batch_size=0 must be at least 1"),
        ("train.learning_rate=-1", "must be positive"),
        ("train.batch_size=abc", "must be a number"),
        ("train.batch_size=2.5", "must be a whole number"),
        ("text.batching=zip", "is not one of pad, pack"),
        ("data.splits=[0.5,0.5]", "three non-negative fractions"),
        ("train.precision=fp8", "is not one of auto, fp32, bf16, fp16"),
        ("text.template=hello", "must contain {title} and {overview}"),
        ("train.keep_best=yes please", "must be true or false"),
        ("nonsense", "must look like section.key=value"),
    ],
)
def test_bad_values_name_the_problem(override, fragment):
    with pytest.raises(UserError) as e:
        load_config("smoke", [override])
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_unknown_profile_lists_the_real_ones():
    with pytest.raises(UserError, match="unknown profile 'smok'.*smoke"):
        load_config("smok")


def test_run_config_round_trips(smoke_run, smoke_cfg):
    assert load_run_config(smoke_run).hash() == smoke_cfg.hash()
