"""How much memory the learners' internal chunks may use.

The batched solvers work on chunks of subsets whose temporaries grow with the chunk; a chunk's
working set is kept under a share of the memory the system can still give (Linux
``MemAvailable``), and never above the learner's own fixed budget, so the chunking (which never
changes a value) only shrinks when memory is short.

The environment variable ``DATAWORTH_MEMORY_LIMIT`` caps the memory assumed available: a number
of bytes with an optional suffix ``K``, ``M``, ``G`` or ``T`` (powers of 1024), e.g. ``512M``.
It is meant for a process sharing a machine (or a container whose limit ``MemAvailable`` does not
show), and for tests.
"""

from __future__ import annotations

import os
import re
import time

from dataworth.errors import DataworthError

__all__ = ["MEMORY_LIMIT_ENV", "available_memory", "chunk_budget"]

#: Environment variable that caps the memory the learners assume available.
MEMORY_LIMIT_ENV = "DATAWORTH_MEMORY_LIMIT"
# A chunk's working set stays under this share of the available memory: the rest is left to
# the caller's arrays, the other worker processes and the system.
CHUNK_SHARE = 0.25
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
# The system's reading is reused for this many seconds: a small fit asks for it several times
# within milliseconds, and reading /proc/meminfo each time cost a tenth of a small LOO.
_PROBE_SECONDS = 0.5
_last_probe: tuple[float, int | None] | None = None


def _limit_from_env() -> int | None:
    text = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    if not text:
        return None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?", text, flags=re.IGNORECASE)
    if match is None or float(match.group(1)) <= 0:
        raise DataworthError(
            f"{MEMORY_LIMIT_ENV}={text!r} is not a memory size; give bytes or a number with "
            "K, M, G or T, e.g. 512M or 4G."
        )
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def _system_available() -> int | None:
    global _last_probe
    now = time.monotonic()
    if _last_probe is not None and now - _last_probe[0] < _PROBE_SECONDS:
        return _last_probe[1]
    _last_probe = (now, _read_system_available())
    return _last_probe[1]


def _read_system_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def available_memory() -> int | None:
    """Bytes of memory available to this process now, or ``None`` when it cannot be told.

    The system's available memory (``MemAvailable`` from ``/proc/meminfo``, else the free
    physical pages), capped by ``DATAWORTH_MEMORY_LIMIT`` when that is set.

    Returns
    -------
    int or None
    """
    system, limit = _system_available(), _limit_from_env()
    known = [v for v in (system, limit) if v is not None]
    return min(known) if known else None


def chunk_budget(ceiling: int) -> int:
    """Bytes one internal chunk may use: a quarter of the available memory, at most ``ceiling``.

    Parameters
    ----------
    ceiling : int
        The learner's fixed budget, used as it is when memory is plentiful or unknown.

    Returns
    -------
    int
        At least 1 (a chunk always holds one subset, whatever its size).
    """
    available = available_memory()
    if available is None:
        return ceiling
    return max(1, min(ceiling, int(CHUNK_SHARE * available)))
