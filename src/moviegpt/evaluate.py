"""The evaluate stage: held-out loss and perplexity, token-weighted.

Perplexity is exp(total NLL / total target tokens) over the whole split, the same for
the base and the fine-tuned model, so the two compare. (The mean of per-batch perplexities,
or of per-batch mean losses when batches hold different numbers of tokens, would not.)
Each film is scored on its own (pad mode), so the number does not depend on how training batched.
"""
from __future__ import annotations

import math

import datasets
import torch
import torch.nn.functional as F
from transformers import PreTrainedModel

from moviegpt import data, tokens
from moviegpt.config import DataConfig, TextConfig
from moviegpt.model import load_trained


@torch.no_grad()
def token_nll(model: PreTrainedModel, ds: datasets.Dataset, batch_size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-film summed NLL and target-token counts for a pad-mode dataset (labels -100 on padding)."""
    model.eval()
    device = next(model.parameters()).device
    nll, counts = [], []
    for i in range(0, len(ds), batch_size):
        batch = ds[i:i + batch_size]
        mask = torch.tensor(batch["attention_mask"])
        width = int(mask.sum(1).max())  # drop columns that are padding in every row of this batch
        ids = torch.tensor(batch["input_ids"])[:, :width].to(device)
        labels = torch.tensor(batch["labels"])[:, :width].to(device)
        logits = model(input_ids=ids, attention_mask=mask[:, :width].to(device)).logits.float()
        target = labels[:, 1:]
        loss = F.cross_entropy(logits[:, :-1].transpose(1, 2), target, ignore_index=-100, reduction="none")
        nll.append(loss.sum(1).cpu())
        counts.append((target != -100).sum(1).cpu())
    return torch.cat(nll).double(), torch.cat(counts)


def perplexity(model: PreTrainedModel, ds: datasets.Dataset, batch_size: int = 8) -> dict:
    nll, n = token_nll(model, ds, batch_size)
    loss = float(nll.sum() / n.sum())
    return {"loss": loss, "perplexity": math.exp(loss), "tokens": int(n.sum()), "films": len(ds)}


def evaluate_model(model_dir: str, source: str = "bundled", split: str = "test", max_rows: int | None = None,
                   batch_size: int = 8) -> dict:
    """`moviegpt evaluate`: a trained model on one split of any data source (split by the same film hashes)."""
    model, tok, s = load_trained(model_dir)
    splits = data.load_splits(DataConfig(source=source, splits=s["splits"], max_train_rows=max_rows,
                                         max_eval_rows=max_rows), s["seed"])
    text = TextConfig(template=s["template"], max_length=s["max_length"])
    ds = tokens.tokenize(splits[split], tok, text, batching="pad", desc=f"{split} films")
    return {"model": str(model_dir), "data": source, "split": split, **perplexity(model, ds, batch_size)}
