"""Independent CPU work items side by side: same results, in order, and torch's thread count restored."""

from __future__ import annotations

import threading

import pytest
import torch

from sefa_plugin.utils.parallel import map_on_cpu_threads


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _work(seed: int) -> tuple[str, int, torch.Tensor]:
    x = torch.randn(64, 64, generator=torch.Generator().manual_seed(seed))
    return threading.current_thread().name, torch.get_num_threads(), x @ x


def test_items_run_on_single_threaded_workers_in_order(two_threads):
    out = map_on_cpu_threads(_work, list(range(6)))
    assert [torch.equal(r[2], _work(i)[2]) for i, r in enumerate(out)] == [True] * 6
    assert all(name.startswith("sefa-cpu") and threads == 1 for name, threads, _ in out)
    assert torch.get_num_threads() == 2


def test_inline_with_one_thread_one_item_or_another_device(two_threads):
    assert map_on_cpu_threads(_work, [0])[0][0] == threading.current_thread().name
    assert map_on_cpu_threads(_work, [0, 1], device="cuda")[1][0] == threading.current_thread().name
    torch.set_num_threads(1)
    assert {r[0] for r in map_on_cpu_threads(_work, [0, 1])} == {threading.current_thread().name}


def test_an_error_is_raised_and_the_thread_count_restored(two_threads):
    def fail(i: int) -> int:
        if i == 1:
            raise ValueError("item 1")
        return i

    with pytest.raises(ValueError, match="item 1"):
        map_on_cpu_threads(fail, [0, 1, 2])
    assert torch.get_num_threads() == 2
    assert map_on_cpu_threads(lambda i: i, [3, 4]) == [3, 4]  # the lock was released
