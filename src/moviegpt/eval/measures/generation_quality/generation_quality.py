"""Generation quality of a set of generated texts: stopping, length, diversity, repetition, copying."""

import datasets
import evaluate

from moviegpt.eval import metrics

_DESCRIPTION = """
Measures of a set of generated texts (overviews written from a title):
- eos_share: the share of texts the model ended itself, with its end-of-text token;
- mean_words and, with real_texts, length_ratio: words per text, and per text its words over the reference's;
- distinct_1, distinct_2: unique word n-grams over all word n-grams, across the texts (Li et al., 2016);
- repeated_3gram_rate: per text, the share of its word 3-grams that repeat an earlier one, averaged;
- longest_copy_words, with training_texts: per text, the longest run of consecutive words it shares with any
  training text (runs shorter than 3 words count as 0), averaged.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: the generated texts.
    ended_with_eos: per text, whether the model ended it (True) or it reached the token limit.
    real_texts: optional keyword, per text, the real text it stands for, for length_ratio.
    training_texts: optional keyword, the training texts, for longest_copy_words.
Returns:
    n, eos_share, mean_words, words, distinct_1, distinct_2, repeated_3gram_rate, repeated_3grams, and
    length_ratio (with real_texts) and longest_copy_words, copy_words, copy_share (with training_texts).
Examples:
    >>> q = evaluate.load("path/to/generation_quality")
    >>> q.compute(predictions=["a b c a b c"], ended_with_eos=[True])["repeated_3gram_rate"]
    0.25
"""

_CITATION = """
@inproceedings{li2016diversity,
  title={A Diversity-Promoting Objective Function for Neural Conversation Models},
  author={Li, Jiwei and Galley, Michel and Brockett, Chris and Gao, Jianfeng and Dolan, Bill},
  booktitle={NAACL},
  year={2016}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class GenerationQuality(evaluate.Metric):
    def _info(self):
        features = {"predictions": datasets.Value("string"), "ended_with_eos": datasets.Value("bool")}
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(features),
        )

    def _compute(self, predictions, ended_with_eos, real_texts=None, training_texts=None, **_):  # **_: evaluate.combine
        gens = [{"text": t, "ended_with_eos": bool(e)} for t, e in zip(predictions, ended_with_eos)]
        out = metrics.generation_quality(gens, metrics.CopyIndex(training_texts or []))
        if not training_texts:
            for key in ("longest_copy_words", "copy_words", "copy_share"):
                out.pop(key)
        if real_texts is not None:
            real = [len(metrics.words(r)) for r in real_texts]
            out["length_ratio"] = sum(w / max(r, 1) for w, r in zip(out["words"], real)) / max(len(real), 1)
        return out
