"""Time a clean build of the book and a rebuild with nothing changed (profile: smoke by default).

    python benchmarks/book_build.py [--profile smoke]

"Clean" means no finished run and no execution cache for the profile: the build trains, executes
every chapter and writes the site. The profile's existing run and cache are moved aside for the
measurement and put back afterwards. Writes benchmarks/results/book_build.json.
"""

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import harness

from moviegpt.book import arms


def build(out: Path, env: dict) -> float:
    t = time.perf_counter()
    subprocess.run(
        [
            str(Path(os.sys.executable).parent / "jupyter-book"),
            "build",
            str(harness.ROOT),
            "-W",
            "-n",
            "--keep-going",
            "--path-output",
            str(out),
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - t


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="smoke")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    env = dict(os.environ, MOVIEGPT_PROFILE=args.profile, TRANSFORMERS_VERBOSITY="error")
    os.environ["MOVIEGPT_PROFILE"] = args.profile
    name = arms.configs()[arms.MAIN].run_name
    mine = [harness.ROOT / "runs" / name, *(harness.ROOT / ".jupyter_cache").glob(f"{name}-*")]
    with tempfile.TemporaryDirectory(dir=harness.ROOT) as aside:
        moved = [(path, Path(aside) / f"{i}") for i, path in enumerate(mine) if path.exists()]
        for path, to in moved:
            path.rename(to)
        try:
            with tempfile.TemporaryDirectory() as site:
                clean = build(Path(site), env)
                rebuild = build(Path(site), env)
        finally:
            for path, to in moved:
                shutil.rmtree(path, ignore_errors=True)
                to.rename(path)
    print(f"{args.profile}: clean build {clean:.1f} s, rebuild with nothing changed {rebuild:.1f} s")
    print(
        "wrote",
        harness.write_result(
            "book_build",
            {
                "benchmark": "book_build",
                "machine": harness.machine(),
                "profile": args.profile,
                "clean_s": clean,
                "rebuild_s": rebuild,
            },
            args.out,
        ),
    )


if __name__ == "__main__":
    main()
