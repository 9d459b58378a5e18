"""The shared checkpoint helpers: an atomic save that leaves no temporary file, a missing checkpoint, the log."""

from __future__ import annotations

import json

import torch

from sefa_plugin.training.checkpoint import append_log, load_checkpoint, save_checkpoint_atomic


def test_atomic_save_replaces_the_checkpoint_and_leaves_nothing_else(tmp_path):
    path = tmp_path / "run.pt"
    assert load_checkpoint(path) is None
    save_checkpoint_atomic({"step": 1, "w": torch.zeros(3)}, path)
    save_checkpoint_atomic({"step": 2, "w": torch.ones(3)}, path)
    state = load_checkpoint(path)
    assert state["step"] == 2 and torch.equal(state["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]


def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "run.pt"
    save_checkpoint_atomic({"step": 1}, path)
    try:
        save_checkpoint_atomic({"step": 2, "bad": lambda: None}, path)  # not picklable
    except Exception:
        pass
    else:
        raise AssertionError("saving a lambda should fail")
    assert load_checkpoint(path) == {"step": 1} and [p.name for p in tmp_path.iterdir()] == ["run.pt"]


def test_log_appends_one_json_line_per_record(tmp_path):
    log = tmp_path / "log.jsonl"
    append_log(log, {"step": 1, "loss": 0.5})
    append_log(log, {"step": 2, "loss": 0.25})
    assert [json.loads(line) for line in log.read_text().splitlines()] == [
        {"step": 1, "loss": 0.5},
        {"step": 2, "loss": 0.25},
    ]
