"""What this machine lets the process use: CPU cores.

It sits below every layer, so a learner sizing its threads and the engine sizing its worker pool
count the same cores.
"""

from __future__ import annotations

import os

__all__ = ["usable_cpus"]


def usable_cpus() -> int:
    """Return the number of CPUs this process may use (respecting affinity and cpusets)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)
