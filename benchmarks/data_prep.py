"""Data preparation at the full wykonos/movies size: ours vs the report's, each in a fresh process.

    python benchmarks/data_prep.py [--rows 722796] [--original-rows N]

Builds a 722,796-row replica of the bundled films (moviegpt.bench.replica), then measures
load -> clean -> split -> tokenise -> pack (ours, cold cache), the same again (warm cache: the
datasets cache files are reused), and the report's per-row map with padding to 128. Prints a
table and writes benchmarks/results/data_prep.json. Peak memory is the process's and its
workers' maximum resident set.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

from moviegpt import bench

CHILD = """
import json, sys
from moviegpt import bench
r = getattr(bench, sys.argv[1])(sys.argv[2], **json.loads(sys.argv[3]))
r["peak_rss_mb"] = bench.peak_rss_mb()
print("RESULT " + json.dumps(r))
"""


def measure(fn: str, path: str, cache: str, **kw) -> dict:
    env = dict(os.environ, MOVIEGPT_CACHE=cache, HF_HUB_OFFLINE="1", HF_DATASETS_DISABLE_PROGRESS_BARS="1")
    out = subprocess.run([sys.executable, "-c", CHILD, fn, path, json.dumps(kw)], env=env, capture_output=True,
                         text=True, check=True).stdout
    return json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=bench.WYKONOS_ROWS)
    p.add_argument("--original-rows", type=int, default=None, help="measure the original on fewer rows (rows/s is reported)")
    p.add_argument("--out", default=None, help="results folder (default benchmarks/results)")
    args = p.parse_args(argv)
    path = str(bench.replica_file(args.rows))
    orig_path = str(bench.replica_file(args.original_rows)) if args.original_rows else path
    with tempfile.TemporaryDirectory() as cache:
        rows = {"ours (cold cache)": measure("prepare_ours", path, cache),
                "ours (second prepare)": measure("prepare_ours", path, cache),
                "original (per-row map, pad 128)": measure("prepare_original", orig_path, cache)}
    for r in rows.values():
        r["rows_per_s"] = r["rows"] / r["seconds"]
    base = rows["original (per-row map, pad 128)"]["rows_per_s"]
    table = [{"recipe": k, "rows": r["rows"], "seconds": r["seconds"], "rows/s": r["rows_per_s"],
              "x original": r["rows_per_s"] / base, "peak MB": r["peak_rss_mb"]} for k, r in rows.items()]
    print(bench.table(table, ["recipe", "rows", "seconds", "rows/s", "x original", "peak MB"]))
    for k, r in rows.items():
        print(f"  {k}: " + ", ".join(f"{s} {t:.1f} s" for s, t in r["stages"].items()))
    result = {"benchmark": "data_prep", "machine": bench.machine(), "rows": args.rows, "recipes": rows,
              "targets": {"seconds": 60, "peak_rss_mb": 3072}}
    print("wrote", bench.write_result("data_prep" if args.rows == bench.WYKONOS_ROWS else f"data_prep-{args.rows}", result, args.out))


if __name__ == "__main__":
    main()
