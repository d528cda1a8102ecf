"""The Methodology chapter's facts: one film as the model sees it, and what padding, packing and packing that
keeps films apart do with the run's training films. The functions marked load a tokenizer."""

from __future__ import annotations

import pandas as pd

from moviegpt.book.records import original_recipe
from moviegpt.core.config import Config
from moviegpt.data import movies
from moviegpt.model.tokenizer import load_tokenizer


def training_films(cfg: Config) -> pd.DataFrame:
    """The training films the run used (same split, shuffle and cap)."""
    return movies.load_splits(cfg.data, cfg.seed).train


def example_encoding(cfg: Config, film: dict) -> dict:
    """One film as the model sees it: text (with EOS), token ids, and the tokens they stand for. Loads a tokenizer."""
    from moviegpt.data import tokens

    tok, _ = load_tokenizer(cfg.model.tokenizer or cfg.model.name)
    text = tokens.format_film(film, cfg.text.template) + tok.eos_token
    ids = tok(text)["input_ids"]
    return {"text": text, "ids": ids, "pieces": tok.convert_ids_to_tokens(ids), "eos_id": tok.eos_token_id}


def batching_comparison(cfg: Config, films: pd.DataFrame) -> dict:
    """The original recipe's padding (configs/seed.yaml's length) against this run's packing, on the training films
    that ran, with the run's tokenizer. Loads a tokenizer."""
    from moviegpt.data import tokens

    tok, _ = load_tokenizer(cfg.model.tokenizer or cfg.model.name)
    lengths = tokens.token_lengths(films, tok, cfg.text.template)
    return tokens.batching_stats(lengths, original_recipe()["orig_length"], cfg.text.block_size)


def method_facts(cfg: Config, example: dict, stats_: dict) -> dict:
    return {
        "template": cfg.text.template.replace("\n", "\\n"),
        "n_ids": len(example["ids"]),
        "eos_id": example["eos_id"],
        "block_size": cfg.text.block_size,
        "films": stats_["films"],
        "run_max_length": cfg.scored_length,
        "pad_share": stats_["pad"]["padding_share"],
        "truncated": stats_["pad"]["truncated_tokens"],
        "truncated_films": stats_["pad"]["truncated_films"],
        "dropped_tail": stats_["pack"]["dropped_tail_tokens"],
        "batching": cfg.text.batching + (", keeping films apart" if cfg.text.keep_apart else ""),
        **original_recipe(),
    }


def boundary_facts(study) -> dict:
    """What attending across a film boundary costs, from the reference study: the arm that keeps films apart over the
    arm that packs them the same way without (overview tokens of the test films, across seeds and films)."""
    from moviegpt.book import study as S
    from moviegpt.book.words import ci, seeds_ci, verdict

    if study is None:
        return {"boundary_sentence": "The reference study that would measure it could not be read in this copy."}
    if not (study.arm_runs("pack") and study.arm_runs("apart")):
        return {
            "boundary_sentence": "The reference study in this copy has not trained both packing arms yet, so it "
            "does not measure it."
        }
    c = S.compare(study, "pack", "apart")
    if c["n_seeds"] < 2:
        said = "one seed cannot say whether the difference is more than another seed would make"
    else:
        said = (
            "keeping films apart is "
            + verdict(c["seeds"], 1.0, "worse than", "better than", "not measurably different from")
            + " plain packing"
        )
    return {
        "boundary_sentence": f"The reference study measures it: with the same blocks, keeping films apart multiplies "
        f"the held-out perplexity of the overview tokens by {seeds_ci(c['seeds'], '.3f')} against plain packing "
        f"({ci(c['films'], '.3f')} over the test films, for these trained models), so {said}."
    }
