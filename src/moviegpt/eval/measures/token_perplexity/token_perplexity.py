"""Token-weighted perplexity: exp(total NLL / total target tokens) over a set of texts, as moviegpt reports it."""

import math

import datasets
import evaluate

_DESCRIPTION = """
Perplexity over a set of texts, weighted by tokens: the summed negative log-likelihood of every target token of
every text, divided by the number of target tokens, exponentiated. This equals exp(eval loss) when the loss is
averaged over tokens, as transformers' run_clm.py reports it. It is not the mean of per-text perplexities (the
hub's `perplexity` module), which weighs a short text as much as a long one and is pulled up by the texts a
model finds hardest.
"""

_KWARGS_DESCRIPTION = """
Args:
    nll: per text, the summed negative log-likelihood (nats) of its target tokens.
    tokens: per text, the number of target tokens.
Returns:
    perplexity: exp(sum(nll) / sum(tokens)).
    loss: sum(nll) / sum(tokens), nats per token.
    tokens: sum(tokens).
    texts: the number of texts.
Examples:
    >>> ppl = evaluate.load("path/to/token_perplexity")
    >>> round(ppl.compute(nll=[2.0, 4.0], tokens=[1, 2])["perplexity"], 4)
    7.3891
"""

_CITATION = """
@inproceedings{jelinek1977perplexity,
  title={Perplexity -- a measure of the difficulty of speech recognition tasks},
  author={Jelinek, Fred and Mercer, Robert L and Bahl, Lalit R and Baker, James K},
  booktitle={Journal of the Acoustical Society of America},
  volume={62},
  year={1977}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class TokenPerplexity(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"nll": datasets.Value("float64"), "tokens": datasets.Value("int64")}),
            reference_urls=["https://huggingface.co/docs/transformers/perplexity"],
        )

    def _compute(self, nll, tokens, **_):  # **_: what evaluate.combine passes on for the other modules
        total, n = float(sum(nll)), int(sum(tokens))
        if n < 1:
            raise ValueError("token_perplexity needs at least one target token")
        loss = total / n
        return {"perplexity": math.exp(loss) if loss < 700 else math.inf, "loss": loss, "tokens": n, "texts": len(nll)}
