"""Sphinx extension for the moviegpt book: one execution cache per (profile, config, source code).

Jupyter Book's cache keys on cell code alone, so a build for another profile, or after a change
to src/moviegpt, would otherwise show stale outputs. Here the cache folder is named after
the profile, the hash of its resolved config and a hash of the package's source files and of
the committed benchmark results that the Performance chapter reads.
"""
import hashlib

from moviegpt import report
from moviegpt.config import PROJECT_ROOT


def _cache_path(app, config):
    src = hashlib.sha256()
    inputs = [*(PROJECT_ROOT / "src" / "moviegpt").rglob("*.py"), *report.BENCH_RESULTS.glob("*.json")]
    for f in sorted(inputs):
        src.update(f.read_bytes())
    cfg = report.book_config()
    config.nb_execution_cache_path = str(PROJECT_ROOT / ".jupyter_cache" / f"{cfg.run_name}-{src.hexdigest()[:8]}")


def setup(app):
    app.connect("config-inited", _cache_path, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
