"""Sphinx extension for the moviegpt book: one execution cache per (profile, resolved runs, source code),
and no progress output in the pages.

Jupyter Book's cache keys on cell code alone, so a build for another profile, after a change to
src/moviegpt, or on a machine whose plan differs would otherwise show stale outputs. Here the cache
folder is named after the book's resolved runs, a hash of the package's source files and of the
committed benchmark results that the Performance chapter reads.
"""

import hashlib
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _cache_path(app, config):
    os.environ["MOVIEGPT_PROGRESS"] = "0"  # the chapters' kernels inherit it: progress bars stay out of the pages
    from moviegpt.book import arms

    src = hashlib.sha256()
    inputs = [*(ROOT / "src" / "moviegpt").rglob("*.py"), *(ROOT / "benchmarks" / "results").glob("*.json")]
    for f in sorted(inputs):
        src.update(f.read_bytes())
    cfgs = arms.configs(root=ROOT)
    arms.write_manifest(cfgs, ROOT)  # the chapters find the runs by it, without importing torch
    runs = "-".join(cfg.run_name for cfg in cfgs.values())
    config.nb_execution_cache_path = str(ROOT / ".jupyter_cache" / f"{runs}-{src.hexdigest()[:8]}")


def _is_notebook(app, pagename: str) -> bool:
    src = Path(app.srcdir) / f"{pagename}.md"
    return src.is_file() and "kernelspec:" in src.read_text()[:600]


def _offer_ipynb(app, pagename, templatename, context, doctree):
    """The theme's download button offers the executed chapter as .ipynb (copied there at the end of the build)."""
    if _is_notebook(app, pagename):
        context["ipynb_source"] = f"{pagename}.ipynb"


def _copy_notebooks(app, exception):
    if exception is not None or app.builder.name != "html":
        return
    executed = Path(app.outdir).parent / "jupyter_execute"
    for nb in executed.rglob("*.ipynb"):
        target = Path(app.outdir) / "_sources" / nb.relative_to(executed)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(nb.read_bytes())


def setup(app):
    app.connect("config-inited", _cache_path, priority=900)
    app.connect("html-page-context", _offer_ipynb, priority=100)  # before the theme builds its header buttons
    app.connect("build-finished", _copy_notebooks)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
