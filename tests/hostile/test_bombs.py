"""Hostile inputs: every crafted file and absurd argument is refused up front, cheaply and cleanly.

All bombs run in one fresh interpreter (``tests/hostile/bombs.py``), one after the other. Per bomb the test
checks the exception type and its one-line message (it names the field or argument) and the time
(< 10 s); for the run it checks the exit status, stderr (no traceback), the peak memory above the
interpreter's baseline after imports (< 1 GiB: the child's own ``ru_maxrss`` from ``os.wait4``, and the
child's peak after each bomb, which shows which bomb raised it) and that nothing was written to disk.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .bombs import BOMBS, make_files

MAX_EXTRA_KB = 1 << 20  # 1 GiB above the baseline
MAX_SECONDS = 10.0


def _listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def bomb_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Write the hostile files, run every bomb in a child process, return its report and resource usage."""
    folder = tmp_path_factory.mktemp("bombs")
    make_files(folder)
    work = tmp_path_factory.mktemp("bomb_cwd")
    before = _listing(folder)
    with open(work / "out", "wb") as out, open(work / "err", "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hostile.bombs", str(folder), *BOMBS],
            cwd=work,
            stdout=out,
            stderr=err,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
        )
        _, status, usage = os.wait4(proc.pid, 0)  # not Popen.wait: wait4 also gives this child's peak memory
    stdout = (work / "out").read_text()
    return {
        "exit_code": os.waitstatus_to_exitcode(status),
        "peak_kb": usage.ru_maxrss,
        "stderr": (work / "err").read_text(errors="replace"),
        "report": json.loads(stdout.strip().splitlines()[-1]) if stdout.strip() else {},
        "files_unchanged": _listing(folder) == before,
        "cwd_files": sorted(p.name for p in work.iterdir()),
    }


def test_bomb_run_is_clean(bomb_run: dict[str, Any]) -> None:
    assert bomb_run["exit_code"] == 0, bomb_run["stderr"][-3000:]
    assert "Traceback" not in bomb_run["stderr"], bomb_run["stderr"][-3000:]
    assert bomb_run["files_unchanged"]
    assert bomb_run["cwd_files"] == ["err", "out"]
    extra_kb = bomb_run["peak_kb"] - bomb_run["report"]["baseline_kb"]
    assert extra_kb < MAX_EXTRA_KB, f"peak {bomb_run['peak_kb']} kB, baseline {bomb_run['report']['baseline_kb']} kB"


@pytest.mark.parametrize("name", list(BOMBS))
def test_bomb_is_refused(name: str, bomb_run: dict[str, Any]) -> None:
    _, expected, pattern = BOMBS[name]
    got = bomb_run["report"]["results"][name]
    assert got["type"] == expected.__name__, got
    assert re.search(pattern, got["message"]), got["message"]
    assert "\n" not in got["message"], got["message"]
    assert got["seconds"] < MAX_SECONDS, got["seconds"]
    assert got["peak_kb"] - bomb_run["report"]["baseline_kb"] < MAX_EXTRA_KB, got["peak_kb"]
