"""The tokenizer of a run: the model's own (a hub id, a local directory, a stand-in), or GPT-2's files shipped in
moviegpt, which work offline. Remote code is never trusted."""

from __future__ import annotations

from pathlib import Path

from transformers import AutoTokenizer, GPT2Tokenizer, PreTrainedTokenizerBase

from moviegpt.core import hub, validate
from moviegpt.core.errors import UserError, first_line
from moviegpt.model import assets

BUNDLED_GPT2 = Path(__file__).resolve().parents[1] / "assets" / "gpt2-tokenizer"


def load_tokenizer(name: str) -> tuple[PreTrainedTokenizerBase, str]:
    """Load a tokenizer; returns it and where it came from. "gpt2" falls back to the shipped files offline."""
    if name == "gpt2-bundled" or (name == "gpt2" and not hub.reachable()):
        tok, source = (
            GPT2Tokenizer.from_pretrained(BUNDLED_GPT2),
            f"GPT-2 BPE shipped in moviegpt ({BUNDLED_GPT2.name})",
        )
    elif assets.is_stand_in(name):
        tok, source = _auto(str(assets.ensure(name)), local_files_only=True), assets.STAND_INS[name]["describes"]
    elif Path(name).is_dir():
        validate.model_dir_is_data(Path(name))
        tok, source = _auto(name, local_files_only=True), f"local directory {name}"
    elif hub.reachable():
        tok, source = _auto(name), f"hub: {name}"
    else:
        try:
            tok, source = _auto(name, local_files_only=True), f"local hub cache: {name}"
        except UserError:
            raise UserError(
                f"cannot reach the Hugging Face hub to load tokenizer '{name}'; {hub.OFFLINE_HINT}"
            ) from None
    if tok.eos_token is None:
        raise UserError(f"tokenizer '{name}' has no end-of-text token")
    tok.padding_side = "right"  # pad mode and evaluation assume it; generation switches to left for its batches
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token  # as in the report; harmless because labels come from the attention mask
    return tok, source


def _auto(name: str, **kw) -> PreTrainedTokenizerBase:
    try:
        return AutoTokenizer.from_pretrained(name, trust_remote_code=False, **kw)
    except Exception as e:
        raise UserError(f"cannot load tokenizer '{name}': {first_line(e)}") from None
