"""Hostile inputs: every crafted file and absurd argument is refused up front, cheaply and cleanly.

Each group of bombs runs in a fresh interpreter (``tests/hostile/bombs.py``). The test checks, per bomb, the
exception type and message (it names the field or argument), the time (< 10 s), and for the group the
child's exit status, its stderr (no traceback), its peak memory above the interpreter's baseline after
imports (< 1 GiB, from ``os.wait4``'s ``ru_maxrss``), and that nothing was left on disk.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .bombs import BOMBS, GROUPS, make_files

MAX_EXTRA_KB = 1 << 20  # 1 GiB above the baseline
MAX_SECONDS = 10.0


@pytest.fixture(scope="module")
def bomb_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bombs")
    make_files(folder)
    return folder


def _listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_bombs_are_refused_cheaply(group: str, bomb_folder: Path, tmp_path: Path) -> None:
    names = GROUPS[group]
    before = _listing(bomb_folder)
    tests_dir = Path(__file__).parents[1]
    with open(tmp_path / "out", "wb") as out, open(tmp_path / "err", "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hostile.bombs", str(bomb_folder), *names],
            cwd=tmp_path,
            stdout=out,
            stderr=err,
            env={**os.environ, "PYTHONPATH": str(tests_dir)},
        )
        # wait4 (not Popen.wait) returns this child's own resource usage, peak memory included.
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    err_text = (tmp_path / "err").read_text(errors="replace")
    assert proc.returncode == 0, err_text[-3000:]
    assert "Traceback" not in err_text, err_text[-3000:]
    report = json.loads((tmp_path / "out").read_text().strip().splitlines()[-1])
    for name in names:
        _, expected, pattern = BOMBS[name]
        got = report["results"][name]
        assert got["type"] == expected.__name__, (name, got)
        assert re.search(pattern, got["message"]), (name, got["message"])
        assert "\n" not in got["message"], (name, got["message"])
        assert got["seconds"] < MAX_SECONDS, (name, got["seconds"])
    assert _listing(bomb_folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["err", "out"]  # nothing written in the working folder
    extra_kb = usage.ru_maxrss - report["baseline_kb"]
    assert extra_kb < MAX_EXTRA_KB, f"{group}: peak {usage.ru_maxrss} kB, baseline {report['baseline_kb']} kB"
