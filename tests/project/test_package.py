"""moviegpt installs as a package: a wheel built from the repository, installed into a fresh virtual
environment outside it, runs from an empty folder (profiles and the bundled films are package data)."""

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT as ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    # built from a copy of the sources: setuptools writes build/ and *.egg-info into the tree it builds
    src = tmp_path_factory.mktemp("src") / "moviegpt"
    shutil.copytree(
        ROOT,
        src,
        symlinks=True,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "runs", "_build", ".jupyter_cache", "build", "*.egg-info", "__pycache__", ".hypothesis"
        ),
    )
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(src)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    return next(out.glob("moviegpt-*.whl"))


def test_the_wheel_carries_profiles_and_data(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for needed in (
        "moviegpt/profiles/smoke.yaml",
        "moviegpt/profiles/demo.yaml",
        "moviegpt/bundled/tmdb5000.parquet",
        "moviegpt/assets/gpt2-tokenizer/vocab.json",
        "moviegpt/eval/measures/token_perplexity/token_perplexity.py",
        "moviegpt/eval/measures/generation_quality/generation_quality.py",
    ):
        assert needed in names, needed


def test_installed_wheel_trains_from_an_empty_folder(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # the dependencies come from this environment (no download); moviegpt itself only from the wheel
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    r = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)} | {"HF_HUB_OFFLINE": "1"}
    where = subprocess.run(
        [str(python), "-c", "import moviegpt; print(moviegpt.__file__)"],
        cwd=empty,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(env_dir) in where and str(ROOT) not in where  # the installed copy, not the repository
    # the shipped metric modules load by their installed path with evaluate.load, offline, and combine
    code = (
        "import evaluate\n"
        "from importlib import resources\n"
        "where = resources.files('moviegpt') / 'eval' / 'measures'\n"
        "ppl = evaluate.load(str(where / 'token_perplexity'))\n"
        "print(round(ppl.compute(nll=[2.0, 4.0], tokens=[1, 2])['perplexity'], 4))\n"
        "both = evaluate.combine([str(where / 'token_perplexity'), str(where / 'generation_quality')])\n"
        "print(sorted(both.compute(nll=[1.0], tokens=[1], predictions=['a b'], ended_with_eos=[True])))\n"
    )
    r = subprocess.run(
        [str(python), "-c", code], cwd=empty, env=env | {"HF_EVALUATE_OFFLINE": "1"}, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.splitlines()[0] == "7.3891" and "eos_share" in r.stdout and "perplexity" in r.stdout
    moviegpt = env_dir / "bin" / "moviegpt"
    r = subprocess.run([str(moviegpt), "profiles"], cwd=empty, env=env, capture_output=True, text=True)
    assert r.returncode == 0 and {"smoke", "demo", "seed", "full"} <= set(r.stdout.split()), r.stderr
    r = subprocess.run(
        [str(moviegpt), "train", "--config", "smoke"], cwd=empty, env=env, capture_output=True, text=True, timeout=900
    )
    assert r.returncode == 0, r.stderr[-2000:]
    runs = list((empty / "runs").glob("smoke-*/summary.json"))
    assert len(runs) == 1 and (runs[0].parent / "model" / "model.safetensors").exists()
