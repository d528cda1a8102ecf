"""Sphinx extension for the moviegpt book: one execution cache per (profile, resolved runs, source code),
and no progress output in the pages.

Jupyter Book's cache keys on cell code alone, so a build for another profile, after a change to
src/moviegpt, or on a machine whose plan differs would otherwise show stale outputs. Here the cache
folder is named after the book's resolved runs, a hash of the package's source files and of the
committed benchmark results that the Performance chapter reads.
"""

import hashlib
import os
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _cache_path(app, config):
    """Checks what the build reads (moviegpt.book.arms.check) and names the execution cache. A problem a user must
    fix ends the build here with moviegpt's one line and exit code 2, before any chapter runs."""
    from moviegpt.core.errors import UserError, terminal

    try:
        _prepare(config)
    except UserError as e:
        sys.stdout.flush()
        print(f"moviegpt: error: {terminal(str(e).splitlines()[0])}", file=sys.stderr, flush=True)
        os._exit(e.exit_code)  # Sphinx would wrap an exception in pages of its own context


def _prepare(config):
    os.environ["MOVIEGPT_PROGRESS"] = "0"  # the chapters' kernels inherit it: progress bars stay out of the pages
    from moviegpt.book import arms

    arms.check(log=lambda line: print(line, file=sys.stderr), root=ROOT)
    _source_archive()

    src = hashlib.sha256()
    inputs = [*(ROOT / "src" / "moviegpt").rglob("*.py"), *(ROOT / "benchmarks" / "results").glob("*.json")]
    for f in sorted(inputs):
        src.update(f.read_bytes())
    cfgs = arms.configs(root=ROOT)
    arms.write_manifest(cfgs, ROOT)  # the chapters find the runs by it, without importing torch
    runs = "-".join(cfg.run_name for cfg in cfgs.values())
    config.nb_execution_cache_path = str(ROOT / ".jupyter_cache" / f"{runs}-{src.hexdigest()[:8]}")


ARCHIVE = ROOT / "_build" / "source" / "moviegpt-source.tar.gz"  # linked from the introduction ({download})


def _source_archive() -> None:
    """The project's source as the introduction's download: the files git tracks (the working tree's versions), or
    without git the source folders."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
        files = [ROOT / f for f in listed.decode().split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        files = [p for d in ("src", "book", "configs", "tests", "benchmarks", "scripts") for p in (ROOT / d).rglob("*")]
        files += [ROOT / f for f in ("README.md", "pyproject.toml", "_config.yml", "_toc.yml", "environment.yml")]
    ARCHIVE.parent.mkdir(parents=True, exist_ok=True)
    tmp = ARCHIVE.with_suffix(".tmp")
    with tarfile.open(tmp, "w:gz") as tar:
        for f in sorted(files):
            if f.is_file() and not f.is_symlink():
                info = tar.gettarinfo(str(f), arcname=f"moviegpt/{f.relative_to(ROOT)}")
                info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
                with open(f, "rb") as fh:
                    tar.addfile(info, fh)
    tmp.replace(ARCHIVE)


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
