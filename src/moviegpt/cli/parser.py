"""moviegpt's command line: its parser, and the rule for errors (the commands themselves: moviegpt.cli.commands).

User errors (missing file or column, unknown profile, bad value, unreachable hub id) print one line on
stderr and exit with code 2; an interrupted training run saves, says how to resume and exits with 130.
"""

from __future__ import annotations

import argparse
import os
import sys

from moviegpt import __version__
from moviegpt.cli.commands import (
    cmd_assets,
    cmd_book,
    cmd_config,
    cmd_demo,
    cmd_evaluate,
    cmd_export,
    cmd_generate,
    cmd_prepare,
    cmd_profiles,
    cmd_recommend,
    cmd_study,
    cmd_train,
)
from moviegpt.core.config import GENERATION_DEFAULTS
from moviegpt.core.errors import UserError, reporting

EPILOG = (
    "Profiles: `moviegpt profiles`; settings: `moviegpt config --keys`; --set section.key=value overrides any setting."
)


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument as one UserError line instead of usage text and exit."""

    def error(self, message):
        raise UserError(f"{self.prog}: {message}")


def _config_args(p) -> None:
    p.add_argument("--config", "-c", default="smoke", help="profile name (`moviegpt profiles`) or a YAML path")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting, e.g. --set train.max_steps=20 (repeatable)",
    )


def _sampling_args(p) -> None:
    d = GENERATION_DEFAULTS
    p.add_argument("--max-new-tokens", type=float, default=d["max_new_tokens"])
    p.add_argument("--seed", type=float, default=0)
    p.add_argument("--temperature", type=float, default=d["temperature"], help="> 0; lower is more predictable")
    p.add_argument("--top-p", type=float, default=d["top_p"], help="nucleus sampling, in (0, 1]")
    p.add_argument("--top-k", type=float, default=d["top_k"], help="0 = no top-k cut")
    p.add_argument("--repetition-penalty", type=float, default=1.0, help=">= 1; 1 = none (transformers' generate)")
    p.add_argument("--no-repeat-ngram-size", type=float, default=0, help="forbid repeating any n-gram of this size")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="moviegpt", description=__doc__.splitlines()[0], epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"moviegpt {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    _train_parsers(sub)
    _use_parsers(sub)
    _other_parsers(sub)
    return parser


def _train_parsers(sub) -> None:
    p = sub.add_parser("prepare", help="load, clean, split and tokenise; print counts and token statistics")
    _config_args(p)
    p.set_defaults(func=cmd_prepare)
    p = sub.add_parser(
        "train",
        help="fine-tune (or reuse/resume the run with the same config)",
        description="Fine-tune with the profile's recipe. A finished run with the same resolved config "
        "is reused, an interrupted one resumed; a changed config gets a new run directory.",
    )
    _config_args(p)
    p.add_argument(
        "--from",
        dest="parent",
        metavar="RUN",
        help="continue from a finished run's model (its test films stay held out); the new run records its parent",
    )
    p.add_argument("--evaluate", action="store_true", help="also write the full evaluation (eval.json) afterwards")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser(
        "evaluate",
        help="held-out loss and perplexity of a model (or a whole run's eval.json), as JSON",
        description="With --model: token-weighted loss and perplexity on one split of a data source. "
        "With --run: the full evaluation of a run, base against fine-tuned, to RUN/eval.json.",
    )
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--model", "-m", help="a save_pretrained directory (e.g. runs/smoke-XXXX/model)")
    who.add_argument("--run", "-r", help="a finished run directory (e.g. runs/smoke-XXXX)")
    p.add_argument("--data", "-d", default="bundled", help="bundled, a hub dataset id, or a .csv/.parquet/.jsonl path")
    p.add_argument("--split", default="test", choices=["train", "validation", "test"])
    p.add_argument("--max-rows", type=float, default=None, help="evaluate at most N films (seeded sample)")
    p.add_argument("--batch-size", type=float, default=8)
    p.set_defaults(func=cmd_evaluate)


def _use_parsers(sub) -> None:
    p = sub.add_parser(
        "generate",
        help="write overviews for a title, invent films, or complete an overview",
        description="title: an overview for a title; concept: a new film, title and overview (a title "
        "that exists in the run's data is drawn again); completion: finish --text.",
    )
    p.add_argument("--model", "-m", required=True, help="a save_pretrained directory (e.g. runs/smoke-XXXX/model)")
    p.add_argument("--mode", choices=["title", "concept", "completion"], default="title")
    p.add_argument("--title", "-t", default="", help="the film's title (title mode; optional for completion)")
    p.add_argument("--text", default="", help="completion mode: the start of the overview")
    p.add_argument("--genre", default=None, help="fills {genres} when the model's template names it")
    p.add_argument("--field", action="append", default=[], metavar="NAME=VALUE", help="fills any other template field")
    p.add_argument("--num", "-n", type=float, default=3, help="how many overviews (1-20)")
    _sampling_args(p)
    p.set_defaults(func=cmd_generate)
    p = sub.add_parser("recommend", help="films with overviews like a given film's (or like free text)")
    p.add_argument("--model", "-m", required=True, help="the model/ directory of a moviegpt run")
    p.add_argument("--title", "-t", required=True, help="a film title in the corpus, or any free text")
    p.add_argument("-k", type=float, default=5, help="how many films (1-100)")
    p.set_defaults(func=cmd_recommend)
    p = sub.add_parser("demo", help="a local web page to try the model: generations and recommendations")
    p.add_argument("--model", "-m", required=True, help="the model/ directory of a moviegpt run")
    p.add_argument("--host", default="127.0.0.1", help="loopback by default; anything else needs --allow-remote")
    p.add_argument("--port", type=float, default=8765)
    p.add_argument("--allow-remote", action="store_true", help="serve on a non-loopback address (prints a warning)")
    p.set_defaults(func=cmd_demo)


def _other_parsers(sub) -> None:
    p = sub.add_parser(
        "book",
        help="train and evaluate every run the book shows, with progress (then build it)",
        description="What scripts/build_book.sh runs before `jupyter-book build`: the book's runs "
        "(MOVIEGPT_PROFILE, default demo) trained or reused, and evaluated.",
    )
    p.set_defaults(func=cmd_book)
    p = sub.add_parser(
        "study",
        help="make (or resume) a reference study: recipes one change at a time, at equal tokens, over seeds",
        description="Trains every arm of a study (configs/studies/NAME.yaml) at every seed, each run cached and "
        "resumed as any run is, and exports each finished run's records (no weights) to data/study/NAME/ with "
        "study.json. Run it again to resume.",
    )
    p.add_argument("study", nargs="?", default="cpu", help="a study name (configs/studies/) or a YAML path")
    p.add_argument("--out", default=None, help="where to export (default: data/study/NAME)")
    p.set_defaults(func=cmd_study)
    p = sub.add_parser(
        "export",
        help="copy a finished run's artifacts (no weights) into a folder the book reads as a reference run",
        description="Config, summary, evaluations and metrics of RUN into DEST (a new or empty folder), with "
        "DEST/reference.json naming the machine, date and code version that made the run. The book shows "
        "every such folder under data/reference/.",
    )
    p.add_argument("run", help="a finished run directory")
    p.add_argument("dest", help="a new or empty folder, e.g. data/reference/<name>")
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("config", help="print a profile's resolved settings, or every key with its help")
    _config_args(p)
    p.add_argument("--keys", action="store_true", help="every setting with its default and help")
    p.set_defaults(func=cmd_config)
    p = sub.add_parser("assets", help="download and convert the offline pretrained stand-in (SmolLM2-135M) once")
    p.add_argument("names", nargs="*", default=None, help="stand-ins to prepare (default: all)")
    p.set_defaults(func=cmd_assets)
    p = sub.add_parser("profiles", help="list the shipped profiles")
    p.set_defaults(func=cmd_profiles)


def _quiet_progress_bars() -> None:
    """Library progress bars are for terminals; in a log or a pipe they are noise around the one line that matters."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # read at import by huggingface_hub, transformers
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:  # already imported (a notebook, a test): switch it off directly
        sys.modules["transformers"].utils.logging.disable_progress_bar()
    if "datasets" in sys.modules:
        sys.modules["datasets"].disable_progress_bars()


TEXT_OPTIONS = ("title", "text", "genre", "field")  # texts that reach a tokenizer: checked once, for every command


def _check_texts(args) -> None:
    from moviegpt.core.validate import text_arg
    from moviegpt.eval.generate import MAX_PROMPT_CHARS

    for name in TEXT_OPTIONS:
        value = getattr(args, name, None)
        for v in value if isinstance(value, list) else [value]:
            text_arg(f"--{name}", v, MAX_PROMPT_CHARS)


def _check_cache() -> None:
    """The cache folder (MOVIEGPT_CACHE, else HOME/.cache/moviegpt) is a folder this process can write, or one
    line naming the variable to change."""
    from moviegpt.core.config import CACHE_DIR
    from moviegpt.core.validate import writable_folder

    var = "MOVIEGPT_CACHE" if os.environ.get("MOVIEGPT_CACHE") else "HOME (or MOVIEGPT_CACHE)"
    writable_folder(CACHE_DIR, "the cache folder", f"set {var} to a folder you can write")


def main(argv: list[str] | None = None) -> int:
    from moviegpt.core import progress

    def work():
        args = build_parser().parse_args(argv)
        _check_texts(args)
        if args.func not in (cmd_config, cmd_profiles, cmd_export):  # every other command reads or writes the cache
            _check_cache()
        if not progress.enabled():
            _quiet_progress_bars()
        args.func(args)

    return reporting(work)


if __name__ == "__main__":
    sys.exit(main())
