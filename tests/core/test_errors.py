"""moviegpt.core.errors: a failing environment (a full or small filesystem) is one line and exit code 1."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import readme_rows
from hypothesis import given, settings
from hypothesis import strategies as st

FULL = """
set -e
mount -t tmpfs -o size=$SIZE tmpfs "$MNT"
set +e
"$PY" -m moviegpt.cli $ARGS 2> "$OUT/stderr"
echo $? > "$OUT/rc"
"""


@settings(max_examples=3, deadline=None)
@given(size=st.sampled_from(["64k", "1m", "3m"]))
def test_a_full_or_small_filesystem_is_one_line_exit_1(tmp_path_factory, size):
    if not shutil.which("unshare") or subprocess.run(["unshare", "-rm", "true"]).returncode:
        pytest.skip("needs unshare (user and mount namespaces) to make a small filesystem")
    tmp = tmp_path_factory.mktemp("full")
    (tmp / "mnt").mkdir()
    env = {
        "MNT": str(tmp / "mnt"),
        "OUT": str(tmp),
        "SIZE": size,
        "PY": sys.executable,
        "PATH": "/usr/bin:/bin",
        "HOME": str(Path.home()),
        "HF_HUB_OFFLINE": "1",
        "MOVIEGPT_CACHE": str(tmp / "mnt" / "cache"),  # tokenised films and plans go onto the small filesystem
        "ARGS": f"prepare --config smoke --set runs_dir={tmp / 'mnt' / 'runs'}",
    }
    subprocess.run(["unshare", "-rm", "sh", "-c", FULL], env=env, check=True, timeout=300)
    code, err = int((tmp / "rc").read_text()), (tmp / "stderr").read_text()
    if code != 0:
        lines = [x for x in err.splitlines() if x.strip()]
        assert code == 1 and "internal error" not in err and lines[-1].startswith("moviegpt: error: "), err
        assert readme_rows()["disk-full-anywhere"] in lines[-1]
