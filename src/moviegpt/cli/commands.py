"""The commands behind `moviegpt <command>` (the parser that reaches them: moviegpt.cli.parser). Each imports what it
needs when it runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _n(name: str, value, lo: float, hi: float) -> int:
    from moviegpt.core.validate import number

    return number(name, value, integer=True, lo=lo, hi=hi)


def _say(text: str) -> None:
    """Print text that may come from data, with terminal controls removed."""
    from moviegpt.core.errors import terminal

    print(terminal(text))


def load(name: str, overrides: list[str]):
    """A profile with its overrides, every setting checked, train.trainer_args against TrainingArguments too."""
    from moviegpt.core.settings import load_config

    cfg = load_config(name, overrides)
    if cfg.train.trainer_args:  # transformers is imported only when there is something to check
        from moviegpt.train.trainer import check_args

        check_args(cfg.train.trainer_args)
    return cfg


def cmd_prepare(args) -> None:
    import dataclasses

    from moviegpt.data import tokens
    from moviegpt.train import finetune

    cfg = load(args.config, args.overrides)
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, streaming=False))  # the whole splits, counted
    p = finetune.prepare(cfg, model=False)  # what `moviegpt train` prepares, less the model
    splits, tok_source, train_ds = p.splits, p.tok_source, p.train_ds
    lengths = tokens.token_lengths(splits.train, p.tok, cfg.text.template)
    stats = tokens.batching_stats(lengths, cfg.text.max_length, cfg.text.block_size)
    c = splits.counts
    print(
        json.dumps(
            {
                "run": cfg.run_name,
                "source": cfg.data.source,
                "tokenizer": tok_source,
                "rows_in": c.rows_in,
                "rows_out": c.rows_out,
                "dropped": c.dropped,
                "splits": {k: v.__dict__ for k, v in c.splits.items()},
                "batching": cfg.text.batching,
                "train_examples": len(train_ds),
                "train_tokens": stats,
                "token_length": {"mean": float(lengths.mean()), "max": int(lengths.max())},
            },
            indent=2,
        )
    )


def from_run(parent: str, overrides: list[str]) -> list[str]:
    """`--from RUN`: the overrides that start from that run's model, after checking it is a finished run."""
    from moviegpt.core.rundir import RunDir
    from moviegpt.core.validate import need

    run = RunDir(parent)
    need(run.finished and run.model_dir.is_dir(), f"--from {parent}: not a finished moviegpt run (no summary.json)")
    model = str(run.model_dir.resolve())
    return [
        f"model.name={model}",
        f"model.tokenizer={model}",
        f"model.parent={run.path.resolve()}",
        "model.fallback=null",
        *overrides,
    ]


def cmd_train(args) -> None:
    from moviegpt.core.settings import load_run_config
    from moviegpt.eval.evaluate import evaluate_run
    from moviegpt.train.finetune import is_main_process, run

    overrides = from_run(args.parent, args.overrides) if args.parent else args.overrides
    cfg = load(args.config, overrides)
    if args.parent:
        _same_split(load_run_config(Path(args.parent)), cfg)
    run_dir = run(cfg, log=lambda msg: print(msg, file=sys.stderr))
    if not is_main_process():  # under torchrun / accelerate launch, rank 0 reports
        return
    s = run_dir.summary()
    if args.evaluate:
        evaluate_run(run_dir.path, log=lambda m: print(m, file=sys.stderr))
    print(
        json.dumps(
            {
                "run_dir": str(run_dir.path),
                "base_perplexity": s.base.perplexity,
                "final_perplexity": s.final.perplexity,
            },
            indent=2,
        )
    )


def _same_split(parent, cfg) -> None:
    from moviegpt.core.validate import need

    need(
        parent.data.source == cfg.data.source and parent.data.splits == cfg.data.splits and parent.seed == cfg.seed,
        "--from: the new run must use the parent's data.source, data.splits and seed, or its test films would "
        "include films the parent trained on",
    )


def cmd_evaluate(args) -> None:
    from moviegpt.eval.evaluate import evaluate_model, evaluate_run, headline

    if args.run:
        print(json.dumps(headline(evaluate_run(Path(args.run), log=lambda m: print(m, file=sys.stderr))), indent=2))
        return
    rows = None if args.max_rows is None else _n("--max-rows", args.max_rows, 1, 10**9)
    print(
        json.dumps(
            evaluate_model(args.model, args.data, args.split, rows, _n("--batch-size", args.batch_size, 1, 4096)),
            indent=2,
        )
    )


def cmd_generate(args) -> None:
    from moviegpt.eval.generate import Sampling, generate_for, shown

    how = Sampling(
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        seed=args.seed,
        max_new_tokens=args.max_new_tokens,
        repetition_penalty=args.repetition_penalty,
        no_repeat_ngram_size=args.no_repeat_ngram_size,
    )
    fields = dict(f.partition("=")[::2] for f in args.field)
    if args.genre is not None:
        fields["genres"] = args.genre
    known = _known_titles(args.model) if args.mode == "concept" else None
    out = generate_for(
        args.model,
        [args.title],
        mode=args.mode,
        text=args.text,
        fields=fields,
        num=_n("--num", args.num, 1, 20),
        how=how,
        known=known,
    )
    for r in out:
        if args.mode == "concept":
            _say(f"Movie: {r['title']}\nOverview: {shown(r, 'overview')}\n")
        else:
            _say(f"{r['prompt']}{shown(r, 'raw')}\n")


def _known_titles(model_dir: str) -> set[str] | None:
    """The titles in the data of the run that trained the model, when the model sits in a run directory."""
    from moviegpt.core.settings import load_run_config
    from moviegpt.data import movies

    run_dir = Path(model_dir).resolve().parent
    return movies.known_titles(load_run_config(run_dir).data) if (run_dir / "config.yaml").exists() else None


def cmd_recommend(args) -> None:
    from moviegpt.eval.recommend import for_model

    table, found = for_model(args.model).by_title(args.title, _n("-k", args.k, 1, 100))
    if not found:
        from moviegpt.core.validate import plain

        print(
            f"'{plain(args.title, 200)}' is not a title in the corpus; showing films whose overviews are closest to it "
            "as text.",
            file=sys.stderr,
        )
    _say(table.to_string(index=False))


def cmd_demo(args) -> None:
    from moviegpt.cli.demo import serve

    serve(args.model, args.host, _n("--port", args.port, 0, 65535), allow_remote=args.allow_remote)


def cmd_book(args) -> None:
    from moviegpt.book import arms

    arms.prepare(log=lambda m: print(m, file=sys.stderr))


def cmd_study(args) -> None:
    from moviegpt.train import study

    say = lambda m: print(m, file=sys.stderr)
    out = study.make(study.path_of(args.study), Path(args.out) if args.out else None, log=say)
    _say(f"Study in {out}")


def cmd_export(args) -> None:
    from moviegpt.core import reference

    _say(f"Exported to {reference.export(Path(args.run), Path(args.dest))}")


def cmd_config(args) -> None:
    import yaml

    from moviegpt.core.config import keys_help

    if args.keys:
        for k in keys_help():
            print(f"{k['key']} = {json.dumps(k['default'])}  ({k['type']})\n    {k['help']}")
        return
    cfg = load(args.config, args.overrides)
    print(f"# {cfg.run_name}\n" + yaml.safe_dump(cfg.to_dict(), sort_keys=False, allow_unicode=True), end="")


def cmd_assets(args) -> None:
    from moviegpt.model import assets

    for name in args.names or list(assets.STAND_INS):
        print(f"{name}: {assets.ensure(name, log=lambda m: print(m, file=sys.stderr))}")


def cmd_profiles(args) -> None:
    from moviegpt.core.settings import profiles

    print("\n".join(profiles()))
