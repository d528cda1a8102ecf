"""moviegpt.model.causal_lm: a model directory whose settings, config or tokenizer do not fit is refused in one line."""

import json
import shutil

import pytest
from conftest import EXAMPLES, one_line, readme_rows, run_argv
from hypothesis import given
from hypothesis import strategies as st


@pytest.fixture
def model_copy(smoke_run, tmp_path):
    dest = tmp_path / "model"  # a copy of the run around it: recommend reads the run's films
    shutil.copytree(smoke_run / "model", dest)
    shutil.copy(smoke_run / "config.yaml", tmp_path / "config.yaml")
    return dest


def test_model_settings_of_the_wrong_type_and_a_tokenizer_past_the_embeddings(model_copy, capfd):
    rows = readme_rows()
    s = json.loads((model_copy / "moviegpt.json").read_text())
    (model_copy / "moviegpt.json").write_text(json.dumps({**s, "max_length": "long"}))
    line = one_line(*run_argv(["generate", "-m", model_copy, "--title", "Up"], capfd))
    assert rows["model-settings-wrong-type"] in line and "moviegpt.json" in line
    (model_copy / "moviegpt.json").write_text(json.dumps(s))
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_copy)
    tok.add_tokens([f"<extra{i}>" for i in range(400)])
    tok.save_pretrained(model_copy)
    for argv in (["generate", "-m", model_copy, "--title", "Up"], ["recommend", "-m", model_copy, "--title", "Up"]):
        assert rows["tokenizer-past-embeddings"] in one_line(*run_argv(argv, capfd))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**12), 10**12) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@EXAMPLES
@given(
    name=st.sampled_from(["moviegpt.json", "config.json", "generation_config.json", "tokenizer_config.json"]),
    key=st.sampled_from(["max_length", "template", "splits", "seed", "n_embd", "vocab_size", "eos_token_id", "x"]),
    value=JSON,
)
def test_a_mutated_model_directory_is_refused_in_one_line(model_copy, capfd, name, key, value):
    path = model_copy / name
    original = path.read_text()
    try:
        path.write_text(json.dumps({**json.loads(original), key: value}))
        code, err = run_argv(["generate", "-m", model_copy, "--title", "Up", "--max-new-tokens", "4"], capfd)
        if code != 0:
            one_line(code, err)
    finally:
        path.write_text(original)


def test_scoring_and_sampling_use_the_models_own_forward_and_give_the_wrapper_back(gpt2_tok):
    """model.plain_forward (held-out scoring and sampling): inside it the model's class forward runs (here: logits
    in training mode, which loss_only drops); after it the instance's wrapper is back; a model without one is as it
    was."""
    import torch

    from moviegpt import load_config
    from moviegpt.model import causal_lm
    from moviegpt.model.causal_lm import plain_forward
    from moviegpt.train.trainer import loss_only

    tiny = load_config("smoke", ["model.n_layer=1"]).model
    model = loss_only(causal_lm.load_model(tiny, gpt2_tok, 0)[0])
    wrapped, ids = model.forward, torch.tensor([[1, 2, 3]])
    model.train()
    with plain_forward(model) as m:
        assert m(input_ids=ids, labels=ids).logits is not None
    assert model.forward is wrapped and model(input_ids=ids, labels=ids).logits is None
    plain = causal_lm.load_model(tiny, gpt2_tok, 0)[0]
    with plain_forward(plain):
        assert "forward" not in vars(plain)
    assert "forward" not in vars(plain)
