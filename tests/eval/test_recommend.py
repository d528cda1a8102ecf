"""moviegpt.eval.recommend: the embedding cache is rebuilt when it does not match the run."""

import numpy as np


def test_the_embedding_cache_is_rebuilt_when_it_does_not_match(run_copy):
    from moviegpt.eval import recommend

    rec = recommend.for_model(str(run_copy.model_dir))
    good = rec.vecs.copy()
    cache = run_copy.embeddings
    for damage in (
        lambda: cache.write_bytes(cache.read_bytes()[:200]),  # truncated
        lambda: np.save(cache, np.zeros((len(good), 3), np.float32)),  # wrong width
        lambda: cache.with_suffix(".json").write_text('{"key": "stale"}'),
    ):  # the data changed
        damage()
        assert np.allclose(recommend.for_model(str(run_copy.model_dir)).vecs, good, atol=1e-5)
