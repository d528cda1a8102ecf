"""moviegpt's command line: prepare, train, evaluate, generate.

User errors (missing file or column, unknown profile, bad value, unreachable hub id) print one
line on stderr and exit with code 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from moviegpt.config import GENERATION_DEFAULTS
from moviegpt.errors import UserError

EPILOG = "Profiles live in configs/ (smoke, seed, full); --set section.key=value overrides any setting."


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

    p = sub.add_parser("evaluate", help="held-out loss and perplexity of a model on a data source, as JSON",
                       description="Token-weighted loss and perplexity of a model on one split of a data source.")
    _model_args(p)
    p.add_argument("--data", "-d", default="bundled", help="bundled, a hub dataset id, or a .csv/.parquet/.jsonl path")
    p.add_argument("--split", default="test", choices=["train", "validation", "test"])
    p.add_argument("--max-rows", type=int, default=None, help="evaluate at most N films (seeded sample)")
    p.add_argument("--batch-size", type=int, default=8)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("generate", help="write overviews for a title with a trained model",
                       description="Sample overviews for a film title (prompt: the template up to the overview).")
    _model_args(p)
    p.add_argument("--title", "-t", required=True)
    p.add_argument("--num", "-n", type=int, default=3, help="how many overviews")
    p.add_argument("--max-new-tokens", type=int, default=GENERATION_DEFAULTS["max_new_tokens"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=GENERATION_DEFAULTS["temperature"])
    p.add_argument("--top-p", type=float, default=GENERATION_DEFAULTS["top_p"])
    p.add_argument("--top-k", type=int, default=GENERATION_DEFAULTS["top_k"])
    p.set_defaults(func=cmd_generate)

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
    from moviegpt.train import run

    cfg = load_config(args.config, args.overrides)
    run_dir = run(cfg, log=lambda msg: print(msg, file=sys.stderr))
    summary = json.loads((run_dir / "summary.json").read_text())
    print(json.dumps({"run_dir": str(run_dir), "base_perplexity": summary["base"]["perplexity"],
                      "final_perplexity": summary["final"]["perplexity"]}, indent=2))


def cmd_evaluate(args) -> None:
    from moviegpt.evaluate import evaluate_model

    if args.max_rows is not None and args.max_rows < 1:
        raise UserError(f"--max-rows={args.max_rows} must be at least 1")
    print(json.dumps(evaluate_model(args.model, args.data, args.split, args.max_rows, args.batch_size), indent=2))


def cmd_generate(args) -> None:
    from moviegpt.generate import generate_for

    if args.num < 1 or args.max_new_tokens < 1:
        raise UserError("--num and --max-new-tokens must be at least 1")
    for r in generate_for(args.model, [args.title], num=args.num, max_new_tokens=args.max_new_tokens,
                                 seed=args.seed, temperature=args.temperature, top_p=args.top_p, top_k=args.top_k):
        print(f"{r['prompt']} {r['text']}{'' if r['ended_with_eos'] else ' […]'}\n")


def cmd_profiles(args) -> None:
    from moviegpt.config import profiles

    print("\n".join(profiles()))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except UserError as e:
        print(f"moviegpt: error: {e}", file=sys.stderr)
        return UserError.exit_code
    except KeyboardInterrupt:
        print("moviegpt: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
