"""Run CPU-bound jobs in forked child processes and collect their bytes.

Paillier work is pure CPU in C (OpenSSL) driven by Python loops, so it parallelises across
processes, not threads. Both the guest's encryption and the host's encrypted histograms use
this one helper. Plain ``os.fork`` with a pipe per child rather than ``multiprocessing``:
a party may itself run inside a daemonic process, which ``multiprocessing`` forbids to have
children, and a forked child inherits the parent's precomputed tables (Montgomery contexts,
fixed-base tables) for free instead of rebuilding them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from puhui.federated.errors import FederatedError


def run_forked(jobs: Sequence[Callable[[], bytes]]) -> list[bytes]:
    """Run ``jobs[1:]`` in forked children while this process runs ``jobs[0]``; results in order.

    A child that fails makes the whole call fail (nothing partial is returned)."""
    if not jobs:
        return []
    children: list[tuple[int, int]] = []
    for job in jobs[1:]:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: compute, write, leave without running the parent's cleanup
            code = 0
            try:
                os.close(read_end)
                with os.fdopen(write_end, "wb") as sink:
                    sink.write(job())
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        os.close(write_end)
        children.append((pid, read_end))
    own: bytes | None = None
    try:
        own = jobs[0]()
    finally:
        results: list[bytes] = []
        failed = False
        for pid, read_end in children:
            with os.fdopen(read_end, "rb") as source:
                data = source.read()
            _, status = os.waitpid(pid, 0)
            failed = failed or status != 0
            results.append(data)
    if failed:
        raise FederatedError("a worker process failed")
    assert own is not None
    return [own, *results]
