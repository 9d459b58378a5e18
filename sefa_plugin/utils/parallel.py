"""Independent CPU work items run side by side, one torch thread each.

A batch of small images (the embedded 64² generator, 32 per batch) keeps two cores only ~80 % busy with
torch's intra-op threads: its convolutions are small, and the per-sample tail of the network runs
batch-1 layers. Rendering independent batches in parallel threads, each with one intra-op thread, keeps
every core on its own batch (1.2–1.3× faster on a 2-core Xeon, ``benchmarks/RESULTS.md``). Torch releases
the GIL inside its operators, so Python threads suffice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

__all__ = ["map_on_cpu_threads"]

T = TypeVar("T")
R = TypeVar("R")

_lock = threading.Lock()  # one caller at a time changes torch's (process-wide) intra-op thread count


def map_on_cpu_threads(fn: Callable[[T], R], items: Sequence[T], device: torch.device | str = "cpu") -> list[R]:
    """``[fn(x) for x in items]``, on CPU with one worker thread per torch thread, each running single-threaded.

    Torch's intra-op thread count is process-wide: it is set to one while the workers run and restored
    after. Grad mode is per thread, so `fn` must set its own (e.g. be decorated with ``torch.no_grad()``).
    Elsewhere than on CPU, or with one torch thread or one item, the items run in order on this thread.

    Example:

    >>> import torch
    >>> from sefa_plugin.utils.parallel import map_on_cpu_threads
    >>> map_on_cpu_threads(lambda x: int(torch.ones(x).sum()), [1, 2, 3])
    [1, 2, 3]
    """
    workers = min(torch.get_num_threads(), len(items))
    if torch.device(device).type != "cpu" or workers < 2 or not _lock.acquire(blocking=False):
        return [fn(x) for x in items]
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with ThreadPoolExecutor(workers, thread_name_prefix="sefa-cpu") as pool:
            return list(pool.map(fn, items))
    finally:
        torch.set_num_threads(threads)
        _lock.release()
