"""What the machine can do: which device to use and whether a precision is possible and fast."""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

from tokclf.core.errors import EnvironmentProblem, TokclfError

log = logging.getLogger("tokclf")


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when the CPU has bf16 matrix instructions (AVX512-BF16 or AMX): bf16 is then several
    times faster than fp32. Elsewhere bf16 still runs but is emulated and usually slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="ignore")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def check_precision(mixed_precision: str | None) -> None:
    """Reject precisions the machine cannot run, before any data or model is loaded."""
    if mixed_precision == "fp16" and not has_cuda():
        raise EnvironmentProblem(
            "mixed_precision='fp16' needs a CUDA GPU, and none is available",
            where="mixed_precision",
            fix="use mixed_precision='bf16' (fast on CPUs with AVX512-BF16/AMX) or leave it unset for fp32.", code="E0004",
        )
    if mixed_precision == "bf16" and not has_cuda() and not cpu_has_native_bf16():
        log.warning("bf16 requested on a CPU without native bf16 instructions: it will run, but likely slower than fp32")
    if mixed_precision == "bf16" and has_cuda():
        import torch

        if not torch.cuda.is_bf16_supported():
            raise EnvironmentProblem(
                "mixed_precision='bf16' is not supported by this GPU",
                where="mixed_precision",
                fix="use mixed_precision='fp16' on this GPU.", code="E0005",
            )


def autocast_dtype(mixed_precision: str | None):
    """torch dtype to autocast inference to, or None for full precision."""
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mixed_precision or "", None)


def device() -> str:
    return "cuda" if has_cuda() else "cpu"


def distributed_rank() -> tuple[int, int]:
    """(rank, world size) under torchrun / `accelerate launch` (RANK, WORLD_SIZE), else (0, 1)."""
    return int(os.environ.get("RANK", "0") or 0), int(os.environ.get("WORLD_SIZE", "1") or 1)


PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def resolve_precision(mixed_precision: str | None, *, backend: str = "pytorch") -> str | None:
    """"auto" -> "bf16" where the hardware runs it natively (CPU with AVX512-BF16/AMX, or a GPU
    with bf16), else None (fp32). "fp32"/"none"/None -> None. Others are checked by
    `tokclf.core.hardware.check_precision`."""
    value = None if mixed_precision in (None, "none", "fp32") else mixed_precision
    if value not in (None, "auto", "bf16", "fp16"):
        raise TokclfError(f"mixed_precision={mixed_precision!r} is not one of {', '.join(PRECISIONS)}",
                          where="mixed_precision", fix="use auto, fp32, bf16 or fp16.", code="E0006")
    if backend == "onnx":
        if value not in (None, "auto"):
            log.warning("mixed_precision=%s ignored: an ONNX model runs in its exported precision", value)
        return None
    if value == "auto":
        if has_cuda():
            import torch

            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if cpu_has_native_bf16() else None
    check_precision(value)
    return value

