"""moviegpt's metrics as `evaluate` modules, shipped in the package and loaded by local path (no hub):

    token_perplexity     exp(total NLL / total target tokens) over texts: the perplexity this project reports
    generation_quality   stopping, length, distinct-n, repeated 3-grams and the longest run copied from training

    import evaluate
    from moviegpt.eval import measures
    ppl = evaluate.load(measures.path("token_perplexity"))
    ppl.compute(nll=[12.0, 30.5], tokens=[5, 11])
    both = evaluate.combine([measures.path(n) for n in measures.NAMES])

moviegpt evaluate and the book compute through them (moviegpt.eval.evaluate), and eval.json records each one's name
and version.
"""

from __future__ import annotations

from importlib import resources

NAMES = ("token_perplexity", "generation_quality")
_loaded: dict = {}


def path(name: str) -> str:
    """The folder of a shipped module (evaluate.load takes it)."""
    if name not in NAMES:
        raise ValueError(f"no moviegpt metric module {name!r}; there are {', '.join(NAMES)}")
    return str(resources.files("moviegpt.eval") / "measures" / name)


def load(name: str):
    """evaluate.load of a shipped module, once per process."""
    if name not in _loaded:
        import evaluate

        _loaded[name] = evaluate.load(path(name))
    return _loaded[name]


def versions() -> dict[str, str]:
    """Each module's name and version (the moviegpt release and source hash that ships it), for eval.json."""
    from moviegpt.core.artifacts import code_version

    code = code_version()
    return {name: f"{code['version']}+{code['source']}" for name in NAMES}


HUB_PERPLEXITY = "evaluate-metric/perplexity"  # the hub's evaluate module by its full hub name: a bare "perplexity"
# would load a perplexity/perplexity.py from the working folder first


def hub_perplexity(model_dir: str, texts: list[str], max_length: int, module: str = HUB_PERPLEXITY) -> float:
    """The hub's `perplexity` module's mean_perplexity for a saved model on texts. It needs the hub (the module is
    downloaded); the module is loaded before anything else is read, so a hub that answers but cannot serve it
    fails first."""
    import evaluate

    metric = evaluate.load(module, module_type="metric")
    got = metric.compute(model_id=model_dir, predictions=texts, add_start_token=False, max_length=max_length)
    return float(got["mean_perplexity"])
