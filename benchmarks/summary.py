"""Print the committed benchmark results as the Markdown tables the README shows.

    python benchmarks/summary.py
"""
from moviegpt import report


def markdown(df) -> str:
    df = df.reset_index()
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(f"{v:,}" if isinstance(v, int) else str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def main():
    res = report.benchmarks()
    f = report.performance_facts(res)
    print(f"Machine: {f['bench_cpu']}, {f['bench_threads']} threads, torch {f['bench_torch']}; "
          f"peak matmul {f['peak_fp32']:.0f} GFLOP/s fp32, {f['peak_bf16']:.0f} GFLOP/s bf16.\n")
    print(markdown(report.throughput_table(res)), "\n")
    print(f["target_note"], "\n")
    if "train_throughput_gpt2-124m" in res:
        print(markdown(report.throughput_table(res, "train_throughput_gpt2-124m")), "\n")
    print(f["gpt2_note"], "\n")
    if "ttq_x" in f:
        print(f"Time to quality: the original reaches held-out loss {f['ttq_target']:.3f} after {f['ttq_orig_s']:.0f} s; "
              f"ours after {f['ttq_ours_s']:.0f} s ({f['ttq_x']:.1f}x sooner).\n")
    print(markdown(report.data_prep_table(res)), "\n")
    print(markdown(report.checkpoint_table(res)), "\n")
    print(f["book_note"])


if __name__ == "__main__":
    main()
