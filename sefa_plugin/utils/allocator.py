"""Keeping large freed CPU buffers in the process, so that renders do not fault them in from the OS again.

Rendering a 1024² StyleGAN2 image allocates and frees activation buffers of 30–140 MB layer after layer.
glibc's ``malloc`` maps every block above 32 MB straight from the kernel and unmaps it when freed, so the next
buffer of that size starts as untouched pages and the first write to each 4 KiB page is a page fault: on a
2-core Xeon (``benchmarks/bench_generation.py``) that was about a fifth of a 1024² render. Asking ``malloc`` to
serve blocks below 1 GiB from its heap and to keep freed memory there removes those faults; the price is a
resident size that stays at its peak until the setting is turned off again.

Only glibc's allocator (Linux) is tuned; elsewhere nothing changes. The setting is process-wide and affects
allocations made on the main thread (worker threads' arenas still map blocks above 64 MB).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
from functools import lru_cache

logger = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's <malloc.h>
_M_MMAP_THRESHOLD = -3
KEPT_BLOCK_BYTES = 1 << 30  # blocks below this come from (and go back to) the heap
GLIBC_DEFAULT_BYTES = 128 * 1024  # glibc's initial mmap and trim thresholds


@lru_cache(maxsize=1)
def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        libc.gnu_get_libc_version()  # only glibc has it (musl does not)
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):
        return None
    return libc


def set_cpu_buffer_reuse(enable: bool = True) -> bool:
    """Keep (or stop keeping) large freed CPU buffers in the process heap; True if the allocator was tuned.

    With ``enable=False`` the thresholds go back to glibc's initial 128 KiB (its dynamic raising of the mmap
    threshold stays off once set) and the heap's free memory is returned to the OS.

    Example:

    >>> from sefa_plugin.utils.allocator import set_cpu_buffer_reuse
    >>> set_cpu_buffer_reuse(True) in (True, False)  # False where the C library is not glibc
    True
    """
    libc = _glibc()
    if libc is None:
        logger.debug("CPU buffer reuse: not glibc, allocator left as it is")
        return False
    threshold = KEPT_BLOCK_BYTES if enable else GLIBC_DEFAULT_BYTES  # the same for mapping and trimming
    ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, threshold))
    if not enable:
        libc.malloc_trim(0)
    logger.debug("CPU buffer reuse %s: %s", "on" if enable else "off", "done" if ok else "refused by mallopt")
    return ok
