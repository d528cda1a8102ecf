"""Restate the MFU of GPU result files made before each row named its rule and its peak (no GPU needed).

Every throughput row gets, beside the MFU it was written with:
    mfu_rule, mfu_rule_detail, mfu_peak
                             the FLOPs-per-token formula that MFU used (recomputed here from the row and checked
                             against its flops_per_token), in short and with its numbers, and the peak it was divided
                             by: the fastest matmul the GPU ran in the same process, at the row's precision
    mfu_llmc, mfu_llmc_rule  llm.c's rule, 6N + 6LCT with N every parameter, over the vendor's dense bf16 spec peak
                             (moviegpt.core.mfu.SPEC_BF16_PEAK), the way llm.c and PaLM state MFU
gpu_full_profile.json, an end-to-end run whose file stated a rate but no MFU, gets an `mfu` block over its steady
steps (from the log line at step 50 to the last). Idempotent: run it again and nothing changes.

    python benchmarks/restate_mfu.py
"""

from __future__ import annotations

import json
from pathlib import Path

from moviegpt.core.mfu import SPEC_BF16_PEAK, llmc_flops_per_token, spec_peak

RESULTS = Path(__file__).parent / "results"
FILES = ("train_throughput_gpu_h200.json", "train_throughput_gpu_sweep.json")
GPT2 = {"layers": 12, "width": 768, "positions": 1024}  # GPT-2 124M, the model every row trained


def harness_rule(parameters: int, seq_len: int) -> tuple[float, str]:
    """The harness's FLOPs per token when these files were made: PaLM's 6N + 12LCT, N without the position
    embeddings (nanoGPT's count), T the row's sequence length."""
    n = parameters - GPT2["positions"] * GPT2["width"]
    flops = 6 * n + 12 * GPT2["layers"] * GPT2["width"] * seq_len
    return flops, f"6N + 12LCT (PaLM, nanoGPT): N = {n:,} (no position embeddings), L = 12, C = 768, T = {seq_len}"


def restate_row(row: dict, parameters: int, gpu: str) -> dict:
    flops, rule = harness_rule(parameters, row["seq_len"])
    if abs(flops - row["flops_per_token"]) > 1:
        raise SystemExit(f"{row['recipe']}: flops_per_token {row['flops_per_token']} is not {rule} ({flops})")
    spec = spec_peak(gpu)
    llmc = llmc_flops_per_token(parameters, GPT2["layers"], GPT2["width"], row["seq_len"])
    return row | {
        "mfu_rule": "6N + 12LCT",
        "mfu_rule_detail": rule,
        "mfu_peak": f"measured: the fastest {row['precision']} matmul on this GPU in the same process, "
        f"{row['peak_flops'] / 1e12:.1f} TFLOP/s",
        "mfu_llmc": row["tokens_per_s"] * llmc / spec,
        "mfu_llmc_rule": f"6N + 6LCT (llm.c): N = {parameters:,}, L = 12, C = 768, T = {row['seq_len']}, over the "
        f"vendor's dense bf16 peak of the {gpu}, {spec / 1e12:.0f} TFLOP/s",
    }


def restate_profile(result: dict) -> dict:
    """The end-to-end run's MFU over its steady steps, by both rules (its model: GPT-2 124M from config)."""
    rows = [r for r in result["metrics"] if r["kind"] == "train"]
    first, last = next(r for r in rows if r["step"] == 50), rows[-1]
    rate = (last["tokens_seen"] - first["tokens_seen"]) / (last["wall_time"] - first["wall_time"])
    t = result["settings"]["block_size"]
    parameters = 124_439_808
    gpu = result["machine"]["gpu"]
    harness, harness_text = harness_rule(parameters, t)
    measured = json.loads((RESULTS / "train_throughput_gpu.json").read_text())["peak_flops"]["bf16"]  # same H100
    llmc = llmc_flops_per_token(parameters, GPT2["layers"], GPT2["width"], t)
    spec = spec_peak(gpu)
    return result | {
        "mfu": {
            "window": f"steps {first['step']}-{last['step']} (wall time between their log lines, evaluation included)",
            "tokens_per_s": rate,
            "mfu_llmc": rate * llmc / spec,
            "mfu_llmc_rule": f"6N + 6LCT (llm.c): N = {parameters:,}, L = 12, C = 768, T = {t}, over the vendor's "
            f"dense bf16 peak of the {gpu}, {spec / 1e12:.0f} TFLOP/s",
            "mfu_measured_peak": rate * harness / measured,
            "mfu_measured_peak_rule": f"{harness_text}, over the fastest bf16 matmul measured on an H100 of the "
            f"same kind (train_throughput_gpu.json), {measured / 1e12:.1f} TFLOP/s",
        }
    }


def main() -> None:
    assert "H100" in SPEC_BF16_PEAK and "H200" in SPEC_BF16_PEAK
    for name in FILES:
        path = RESULTS / name
        result = json.loads(path.read_text())
        gpu = result["machine"]["gpu"]
        result["throughput"] = [restate_row(r, result["parameters"], gpu) for r in result["throughput"]]
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(name, [f"{r['recipe']}: {r['mfu']:.1%} / {r['mfu_llmc']:.1%}" for r in result["throughput"]])
    path = RESULTS / "gpu_full_profile.json"
    result = restate_profile(json.loads(path.read_text()))
    path.write_text(json.dumps(result, indent=2) + "\n")
    m = result["mfu"]
    print(path.name, f"{m['tokens_per_s']:,.0f} tokens/s: {m['mfu_llmc']:.1%} (llm.c), {m['mfu_measured_peak']:.1%}")


if __name__ == "__main__":
    main()
