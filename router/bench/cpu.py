"""CPU time stolen from this virtual machine while a benchmark ran.

On a shared VM, the hypervisor hands "our" cores to other guests at times: the guest sees it as `steal` time
in /proc/stat. Benchmark figures taken while a tenth of the CPU was stolen are not figures about the code, so
every benchmark reports the share of CPU time stolen during its run next to its numbers (None where
/proc/stat does not exist).
"""

from __future__ import annotations

from pathlib import Path

PROC_STAT = Path("/proc/stat")


def _ticks() -> tuple[int, int] | None:
    """(steal, total) jiffies of all CPUs since boot."""
    try:
        first = PROC_STAT.read_text(encoding="ascii").split("\n", 1)[0].split()
    except OSError:
        return None
    if not first or first[0] != "cpu":
        return None
    # user nice system idle iowait irq softirq steal [guest guest_nice]; guest time is already in user
    values = [int(x) for x in first[1:9]]
    return (values[7] if len(values) > 7 else 0), sum(values)


class StealMeter:
    """``share()``: stolen CPU time over all CPU time since the meter was made."""

    def __init__(self) -> None:
        self._start = _ticks()

    def share(self) -> float | None:
        end = _ticks()
        if self._start is None or end is None or end[1] <= self._start[1]:
            return None
        return round((end[0] - self._start[0]) / (end[1] - self._start[1]), 4)
