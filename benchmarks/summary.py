"""Print the committed benchmark results as the Markdown tables the README shows, each with its machine.

python benchmarks/summary.py
"""

import harness

from moviegpt.book import performance as perf


def markdown(df) -> str:
    df = df.reset_index()
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    body = [
        "| " + " | ".join(f"{v:,}" if isinstance(v, int) else str(v) for v in row) + " |"
        for row in df.itertuples(index=False)
    ]
    return "\n".join([head, rule, *body])


def main():
    res = perf.results(harness.ROOT)
    for name in perf.throughput_runs(res):
        n = perf.throughput_numbers(res[name])
        print(
            f"**{name}** — {n['machine']}; peak matmul "
            + ", ".join(f"{k[5:]} {v:,.0f} GFLOP/s" for k, v in n.items() if k.startswith("peak_"))
            + "\n"
        )
        print(markdown(perf.throughput_table(res[name])), "\n")
        print(
            f"Ours against the original, paired by round: {n['min_x']:.2f} to {n['max_x']:.2f} "
            f"({n['rounds']} rounds); skipped here: {n['skipped']}.\n"
        )
        q = perf.quality_numbers(res[name])
        if q:
            print(
                "Time to quality, on this benchmark's small GPT-2 trained from scratch at each recipe's own learning "
                "rate (not the model the book fine-tunes): "
                f"the original reaches held-out loss {q['ttq_target']:.3f} after "
                f"{q['ttq_orig_s']:.0f} s; ours "
                + (
                    f"after {q['ttq_ours_s']:.0f} s ({q['ttq_x']:.1f}x sooner)"
                    if q["ttq_reached"]
                    else "did not reach it"
                )
                + ".\n"
            )
    print(f"**data_prep** — {perf.machine(res['data_prep'])}\n\n{markdown(perf.data_prep_table(res['data_prep']))}\n")
    print(
        f"**checkpoint_cost** — {perf.machine(res['checkpoint_cost'])}\n\n"
        f"{markdown(perf.checkpoint_table(res['checkpoint_cost']))}\n"
    )
    if "plan" in res:
        p = perf.plan_numbers(res["plan"])
        print(
            f"**plan** — {p['plan_bench_machine']}: estimate {p['plan_estimate_s']:.1f} s; "
            f"a {p['plan_budget_min']:g}-minute plan trained {p['plan_actual_s']:.0f} s "
            f"against {p['plan_planned_s']:.0f} s planned ({p['plan_error']:+.0%}).\n"
        )
    if "sampling" in res:
        r = res["sampling"]
        ms = ", ".join(f"{row['forward']} {row['ms_per_token']:.0f} ms" for row in r["rows"])
        print(f"**sampling** — {perf.machine(r)}: a token for {r['titles']} titles at once ({r['precision']}): {ms}.\n")
    if "warmup_quality" in res:
        w = perf.warmup_numbers(res["warmup_quality"])
        print(
            f"**warmup_quality** — {w['warmup_machine']}: {w['warmup_steps']} steps; held-out perplexity "
            f"{w['warmup_ppl_ours']:.2f} (first step trains) against {w['warmup_ppl_theirs']:.2f} (step 1 at lr 0); "
            f"ratio {w['warmup_ratio']}.\n"
        )
    b = res.get("book_build")
    if b:
        print(
            f"**book_build** — {perf.machine(b)}: clean {b['profile']} build {b['clean_s']:.0f} s, "
            f"rebuild {b['rebuild_s']:.0f} s."
        )


if __name__ == "__main__":
    main()
