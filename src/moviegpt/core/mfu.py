"""Model FLOPs utilisation: the one formula (llm.c's FLOPs per token) and the peaks it is divided by: the vendors'
for a GPU, the matmul peak measured once per CPU (peak). Importing it loads no model library, so a chapter that reads
results can use it; only `peak` imports torch.
"""

from __future__ import annotations

# Vendors' dense (no sparsity) bf16 tensor-core peaks, FLOP/s, by a name the GPU reports (NVIDIA datasheets; the
# H100 and H200 figures are the SXM parts'). The denominator of MFU "the way the field states it" (llm.c, PaLM).
SPEC_BF16_PEAK = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "L4": 121e12, "A10G": 125e12}


def spec_peak(gpu: str | None) -> float | None:
    """The vendor's dense bf16 peak for a GPU by its reported name (e.g. "NVIDIA H100 80GB HBM3"), if known."""
    return next((v for k, v in SPEC_BF16_PEAK.items() if gpu and k in gpu), None)


def llmc_flops_per_token(parameters: int, layers: int, width: int, seq_len: int) -> float:
    """Training FLOPs per token as llm.c counts them: 6 N (every parameter, forward and backward) plus 6 L C T
    for attention (L layers, C channels, T tokens of context). For GPT-2 124M at T = 1024: 8.03e8."""
    return 6 * parameters + 6 * layers * width * seq_len


RULE = "6N + 6LCT"  # the one FLOPs-per-token rule: the training loop's metrics.jsonl and the benchmarks


def model_flops_per_token(config, parameters: int, seq_len: int) -> float:
    """llm.c's FLOPs per token for a transformers model config (GPT-2's n_layer/n_embd or Llama's
    num_hidden_layers/hidden_size names) with `parameters` weights, at seq_len tokens of context."""
    layers = getattr(config, "num_hidden_layers", None) or config.n_layer
    width = getattr(config, "hidden_size", None) or config.n_embd
    return llmc_flops_per_token(parameters, layers, width, seq_len)


def utilisation(
    tokens: float, seconds: float, flops_per_token: float, peak: float | None
) -> tuple[float, float | None]:
    """(tokens/s, MFU) of a window: tokens trained in seconds, times FLOPs per token, over the peak FLOP/s
    (None when no peak is known)."""
    rate = tokens / seconds if seconds > 0 else 0.0
    return rate, (rate * flops_per_token / peak if peak else None)


MAX_PEAK_FLOPS = 1e17  # no single device reaches this: a cached peak above it is not a measurement


def peak(precision: str) -> tuple[float | None, str]:
    """The peak FLOP/s a run's MFU is stated against, and what it is: on a GPU the vendor's dense bf16 peak
    (SPEC_BF16_PEAK), on a CPU the matmul peak at the run's precision, measured once per machine and cached
    (MOVIEGPT_CACHE/peaks); a cached value that is not a plausible peak is measured again."""
    import hashlib
    import json

    import torch

    from moviegpt.core import hardware
    from moviegpt.core.config import CACHE_DIR
    from moviegpt.core.validate import read_small_json, write_atomic

    if torch.cuda.is_available():
        name = torch.cuda.get_device_name()
        return spec_peak(name), f"the vendor's dense bf16 peak of the {name}"
    if precision not in hardware.native_precisions():
        return None, f"none: {precision} is emulated on this CPU"
    key = json.dumps(
        [hardware.cpu_name(), hardware.cpu_capability(), torch.get_num_threads(), torch.__version__, precision]
    )
    path = CACHE_DIR / "peaks" / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"
    found = read_small_json(path)
    flops = found.get("flops") if isinstance(found, dict) else None
    if not isinstance(flops, (int, float)) or isinstance(flops, bool) or not 1e6 <= flops <= MAX_PEAK_FLOPS:
        flops = hardware.matmul_peak(precision)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps({"flops": flops, "machine": key}))
    return float(flops), f"the {precision} matmul peak measured on this CPU ({flops / 1e9:,.0f} GFLOP/s)"
