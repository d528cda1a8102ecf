"""What this machine is and which precisions it computes natively: the facts a run records and a plan sizes to.

Nothing here assumes one CPU. bf16 is native on a GPU that reports it and on a CPU with AVX-512 bf16 or AMX;
elsewhere torch emulates it in software (hundreds of times slower for a large matmul), so no default,
plan or benchmark should pick it there.
"""

from __future__ import annotations

import contextlib
import os
import platform
from importlib.metadata import PackageNotFoundError, version

import torch

from moviegpt.core.artifacts import describe_machine

PRECISIONS = ("fp32", "bf16", "fp16")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_bf16() -> bool:
    """A CPU whose bf16 matmuls run in hardware: AVX-512 bf16 or AMX tiles (what oneDNN dispatches to), with torch's
    own kernels dispatched to AVX-512 too (ATEN_CPU_CAPABILITY=avx2 makes such a CPU compute like an AVX2 one,
    where bf16 is emulated)."""
    hw = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return bool(hw and not cpu_capability().startswith(("AVX2", "DEFAULT")))


def native_precisions() -> list[str]:
    """The precisions this machine computes in hardware (fp32 always; fp16 only on CUDA)."""
    if torch.cuda.is_available():
        return ["fp32", "fp16"] + (["bf16"] if torch.cuda.is_bf16_supported() else [])
    return ["fp32"] + (["bf16"] if cpu_bf16() else [])


def resolve_precision(requested: str) -> tuple[str, str]:
    """(precision that runs, why). auto takes bf16 where it is native, else fp16 on CUDA, else fp32."""
    cuda = torch.cuda.is_available()
    native = native_precisions()
    where = "CUDA" if cuda else f"this CPU ({cpu_capability()})"
    if requested == "fp16" and not cuda:
        return "fp32", "fp16 was requested but needs CUDA; ran in fp32 on the CPU"
    if requested == "auto":
        chosen = "bf16" if "bf16" in native else ("fp16" if cuda else "fp32")
        return chosen, f"auto: {chosen} on {where}" + ("" if "bf16" in native else " (bf16 is not native here)")
    if requested not in native:
        return requested, f"as requested, although {requested} is emulated in software on {where}"
    return requested, "as requested"


def cpu_capability() -> str:
    """The instruction set torch's CPU kernels dispatch to here (DEFAULT, AVX2, AVX512, ...)."""
    return torch.backends.cpu.get_cpu_capability()


def cpu_name() -> str:
    name = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, StopIteration):
        with open("/proc/cpuinfo") as fh:
            name = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    return name


def hardware() -> dict:
    """The machine a run or a benchmark ran on, with what decides its speed."""
    cuda = torch.cuda.is_available()
    return {
        "cpu": cpu_name(),
        "cpu_capability": cpu_capability(),
        "cpu_bf16": cpu_bf16(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "native_precisions": native_precisions(),
    }


describe = describe_machine  # one line naming a machine (moviegpt.core.artifacts, which needs no torch)


def machine_key() -> dict:
    """What a run's timing depends on: the processor, its instruction set and threads, the GPU, torch."""
    hw = hardware()
    keys = ("cpu", "cpu_capability", "cpu_cores", "torch_threads", "gpu")
    return {k: hw[k] for k in keys} | {"torch": torch.__version__}


def machine_tag() -> str:
    """Eight hex digits naming this machine: a budgeted run's directory ends with it (Config.run_name)."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(machine_key(), sort_keys=True).encode()).hexdigest()[:8]


def versions() -> dict:
    pkgs = ["moviegpt", "torch", "transformers", "datasets", "accelerate", "tokenizers"]

    def v(p):
        try:
            return version(p)
        except PackageNotFoundError:
            return None

    return {"python": platform.python_version(), **{p: v(p) for p in pkgs}}


def synchronize() -> None:
    """Wait for queued GPU work, so a host clock read after it is honest (a no-op on a CPU)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class PeakMemory:
    """Peak memory while a block runs, in MB: the GPU's allocated peak on CUDA, else the process's resident set
    sampled five times a second (Linux /proc; elsewhere the process-lifetime peak), so two runs in one process are
    measured apart."""

    def __enter__(self):
        import threading

        self.peak, self._stop = _rss_mb(), threading.Event()
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, _rss_mb())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())
        if torch.cuda.is_available():
            self.peak = torch.cuda.max_memory_allocated() / 2**20
        return False


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def matmul_peak(precision: str, n: int = 2048, reps: int = 8, trials: int = 5) -> float:
    """Best FLOP/s of an n x n matmul at `precision` in this process, on the GPU if there is one: the
    denominator of a CPU's MFU (a CPU has no vendor peak that its kernels reach). Only for a precision this
    machine computes natively: an emulated bf16 matmul would measure nothing a user runs."""
    import time

    if precision not in native_precisions():
        raise ValueError(f"{precision} is not native on this machine; its peak is not measured")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    a, b = (torch.randn(n, n, dtype=DTYPES[precision], device=device) for _ in range(2))
    a @ b  # warm-up: thread pool, kernel choice
    best = 0.0
    for _ in range(trials):
        synchronize()
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        synchronize()
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - t))
    return best
