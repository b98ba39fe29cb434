"""What ``pte-bot bench`` reads of its host: peak RSS per run, and the machine it ran on.

A run's peak is ``VmHWM`` reset before it (``/proc/self/clear_refs``) plus samples of
``VmRSS`` taken during it; where the peak cannot be reset it is the process's
(``ru_maxrss``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import platform
import resource
import sys
from typing import Any

_EARLIER_PEAK_KIB = 0  # the highest VmHWM before a reset: resetting it resets ru_maxrss too
_SAMPLED_KIB = 0  # the highest VmRSS sampled since the last reset


def process_peak_rss_mb() -> float:
    """The process's peak RSS since it started (``ru_maxrss``, and the peaks reset since)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    mb = peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
    return max(mb, max(_EARLIER_PEAK_KIB, _SAMPLED_KIB, status_kib("VmHWM") or 0) / 1024)


def status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def reset_peak_rss() -> bool:
    """Start a new peak from the RSS of now: on Linux, ``5`` to ``/proc/self/clear_refs``
    resets ``VmHWM``. Freed memory is handed back to the system first (``gc.collect()``,
    glibc's ``malloc_trim``), so a part's peak does not carry what an earlier part freed but
    the allocator kept. False where the peak cannot be reset (then it is the process's)."""
    global _EARLIER_PEAK_KIB, _SAMPLED_KIB
    gc.collect()
    _trim()
    _EARLIER_PEAK_KIB = max(_EARLIER_PEAK_KIB, status_kib("VmHWM") or 0, _SAMPLED_KIB)
    _SAMPLED_KIB = 0
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
            clear.write("5")
    except OSError:
        return False
    return status_kib("VmHWM") is not None


def _trim() -> None:
    if not sys.platform.startswith("linux"):
        return
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim with
        return


def sample_rss() -> None:
    """Note the RSS of now: the kernel updates ``VmHWM`` lazily, so a peak that is gone
    again by the time it is read can be missed; the bench samples during a run too."""
    global _SAMPLED_KIB
    _SAMPLED_KIB = max(_SAMPLED_KIB, status_kib("VmRSS") or 0)


def peak_rss_mb() -> float:
    """Peak RSS since :func:`reset_peak_rss` (``VmHWM`` and the samples of
    :func:`sample_rss`), or since the process started where it cannot be reset."""
    hwm = status_kib("VmHWM")
    if hwm is None:
        return process_peak_rss_mb()
    return max(hwm, _SAMPLED_KIB) / 1024


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
    }
