"""What every benchmark result records about the machine it ran on, written once.

Figures from the shared 2-core machine are only comparable with the context they were taken
in (see BENCHMARKS.md, "Six machines"), so each ``results/*.json`` carries this block. A
script adds its own keys (library versions, the source revision) through ``extra``.
"""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def load_average() -> list[float]:
    """The 1-, 5- and 15-minute load averages, rounded: how busy the machine was."""
    return [round(value, 2) for value in os.getloadavg()]


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("" where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def describe(**extra: Any) -> dict[str, Any]:
    """Python, platform, CPU, core count, load average and time (UTC), plus ``extra``."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average_1_5_15_min": load_average(),
        "timestamp_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        **extra,
    }
