import numpy as np
import pytest
import torch
from transformers import DataCollatorForLanguageModeling

from moviegpt.core import hub
from moviegpt.core.config import TextConfig
from moviegpt.data import movies, tokens
from moviegpt.model.tokenizer import load_tokenizer


@pytest.fixture(scope="module")
def films():
    return movies.normalise(movies.read_table("bundled")).dropna(subset=["overview"]).head(40)


def test_shipped_gpt2_tokenizer_gives_gpt2_ids(gpt2_tok):
    assert gpt2_tok("Movie")["input_ids"] == [25097]
    assert gpt2_tok("Hello world")["input_ids"] == [15496, 995]
    assert len(gpt2_tok) == 50257 and gpt2_tok.eos_token_id == 50256
    assert gpt2_tok.pad_token == gpt2_tok.eos_token  # the report's choice
    assert gpt2_tok.is_fast


def test_shipped_tokenizer_matches_the_hub(gpt2_tok, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    hub.reachable.cache_clear()
    try:
        if not hub.reachable():
            pytest.skip("the Hugging Face hub is unreachable here; compared only with known GPT-2 ids")
        hub_tok, source = load_tokenizer("gpt2")
        text = "Movie: Heat\nOverview: A group of professional bank robbers start to feel the heat.<|endoftext|>"
        assert source.startswith("hub") and hub_tok(text)["input_ids"] == gpt2_tok(text)["input_ids"]
    finally:
        hub.reachable.cache_clear()


def test_offline_gpt2_falls_back_to_the_shipped_files():
    tok, source = load_tokenizer("gpt2")  # HF_HUB_OFFLINE=1 in conftest
    assert "shipped" in source and tok("Movie")["input_ids"] == [25097]


def test_template_and_prompt():
    film = {"title": "Heat", "overview": "Cops and robbers.", "genres": ["Action", "Crime"]}
    assert tokens.format_film(film, TextConfig.template) == "Movie: Heat\nOverview: Cops and robbers."
    assert tokens.format_film(film, "{title} ({genres}): {overview}") == "Heat (Action, Crime): Cops and robbers."
    from moviegpt.eval.generate import build_prompt

    assert build_prompt("title", TextConfig.template, title="Heat") == "Movie: Heat\nOverview:"
    assert (
        build_prompt(
            "title",
            "Genres: {genres}\nMovie: {title}\nOverview: {overview}",
            title="Heat",
            fields={"genres": ["Action", "Crime"]},
        )
        == "Genres: Action, Crime\nMovie: Heat\nOverview:"
    )


@pytest.mark.parametrize("batching", ["pad", "pack"])
def test_eos_is_a_learned_target(films, gpt2_tok, batching):
    ds = tokens.tokenize(films, gpt2_tok, TextConfig(batching=batching, max_length=256, block_size=64))
    ids, labels = np.array(ds["input_ids"]), np.array(ds["labels"])
    eos = gpt2_tok.eos_token_id
    if batching == "pad":
        mask = np.array(ds["attention_mask"])
        last = mask.sum(1) - 1  # the last real token of each film
        assert (ids[np.arange(len(ids)), last] == eos).all()
        assert (labels[np.arange(len(ids)), last] == eos).all()  # the real EOS keeps its label...
        assert (labels[mask == 0] == -100).all()  # ...only padding is ignored, though padding is also EOS
        assert (labels[mask == 1] == ids[mask == 1]).all()
    else:
        assert (labels == ids).all() and (ids == eos).sum() >= len(films) - 2  # every film's EOS, bar the dropped tail
        assert ids.shape[1] == 64


def test_the_reports_collator_would_mask_every_eos(films, gpt2_tok):
    """Why we do not use DataCollatorForLanguageModeling with pad = eos: it hides the EOS from the loss."""
    enc = gpt2_tok(tokens.texts(films.head(4), TextConfig.template, gpt2_tok.eos_token))
    batch = DataCollatorForLanguageModeling(gpt2_tok, mlm=False)([{"input_ids": x} for x in enc["input_ids"]])
    assert ((batch["input_ids"] == gpt2_tok.eos_token_id) & (batch["labels"] != -100)).sum() == 0
    ours = tokens.tokenize(films.head(4), gpt2_tok, TextConfig(batching="pad", max_length=256))
    assert (torch.tensor(ours["labels"]) == gpt2_tok.eos_token_id).sum() == 4


def test_pad_and_pack_token_accounting(films, gpt2_tok):
    cfg = TextConfig(max_length=64, block_size=64)
    lengths = tokens.token_lengths(films, gpt2_tok, cfg.template)
    stats = tokens.batching_stats(lengths, cfg.max_length, cfg.block_size)
    pad = tokens.tokenize(films, gpt2_tok, cfg, batching="pad")
    pack = tokens.tokenize(films, gpt2_tok, cfg, batching="pack")
    assert sum(map(sum, pad["attention_mask"])) == stats["pad"]["real_tokens"]
    assert len(pad) * 64 == stats["pad"]["slots"]
    assert len(pack) * 64 == stats["pack"]["real_tokens"] == stats["tokens"] - stats["pack"]["dropped_tail_tokens"]
    assert stats["pack"]["dropped_tail_tokens"] < 64
    assert 0 < stats["pad"]["padding_share"] < 1 and stats["pad"]["truncated_films"] == int((lengths > 64).sum())


def test_tokenising_again_loads_from_the_datasets_cache(films, gpt2_tok):
    cfg = TextConfig(batching="pack", block_size=32)
    first = tokens.tokenize(films, gpt2_tok, cfg)
    second = tokens.tokenize(films, gpt2_tok, cfg)
    assert first.cache_files and first.cache_files == second.cache_files
    assert first["input_ids"] == second["input_ids"]


def test_a_title_token_is_typed_by_its_last_character(gpt2_tok, films):
    """' Avatar' is title though its space belongs to the template; the end-of-text token is its own type."""
    ds = tokens.scored(films.head(3), gpt2_tok, "Movie: {title}\nOverview: {overview}", 256)
    row = ds[0]
    n = sum(row["attention_mask"])
    pieces = [gpt2_tok.decode([i]) for i in row["input_ids"][:n]]
    kinds = [tokens.TOKEN_TYPES[k - 1] for k in row["token_type"][:n]]
    title = films.head(3).iloc[0]["title"]
    assert "".join(p for p, k in zip(pieces, kinds) if k == "title").strip() == title
    assert kinds[-1] == "eos" and pieces[-1] == gpt2_tok.eos_token and kinds[:2] == ["template", "template"]
    assert row["token_type"][n:] == [0] * (len(row["token_type"]) - n)  # padding has no type


def test_packing_that_keeps_films_apart_gives_each_film_its_logits_alone(gpt2_tok):
    """text.keep_apart: position ids restart at each film, no attention mask, no cache: the model builds a per-film
    mask, so a film's logits in a packed block equal its logits alone (plain packing: they do not)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(gpt2_tok), n_layer=2, n_head=2, n_embd=64)).eval()
    films = ["Movie: A\nOverview: A man walks.", "Movie: Bee\nOverview: Bees are buzzing all day long."]
    ids = [gpt2_tok(f + gpt2_tok.eos_token)["input_ids"] for f in films]
    block = tokens.pack(ids, sum(map(len, ids)), keep_apart=True)
    assert "attention_mask" not in block and block["labels"][0][len(ids[0])] == -100  # a film's first token
    x = {k: torch.tensor(v).long() for k, v in block.items()}
    with torch.no_grad():
        apart = model(input_ids=x["input_ids"], position_ids=x["position_ids"], use_cache=False).logits
        joint = model(input_ids=x["input_ids"], use_cache=False).logits
        alone = model(input_ids=torch.tensor([ids[1]])).logits
    second = slice(len(ids[0]), None)
    assert torch.allclose(apart[0, second], alone[0], atol=1e-4)
    assert not torch.allclose(joint[0, second], alone[0], atol=1e-2)
