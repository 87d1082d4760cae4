"""Files written whole or not at all: a failed write leaves the old file and no leftovers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cowest_graph.atomic import write_json_atomic


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing_behind(tmp_path: Path) -> None:
    target = write_json_atomic(tmp_path / "rounds" / "r001.json", {"round": 1, "done": False})
    assert json.loads(target.read_text()) == {"round": 1, "done": False}

    circular: dict[str, object] = {"round": 1}
    circular["self"] = circular
    with pytest.raises(ValueError, match="[Cc]ircular"):
        write_json_atomic(target, circular)
    assert json.loads(target.read_text()) == {"round": 1, "done": False}

    blocked = tmp_path / "rounds" / "taken"
    blocked.mkdir()
    with pytest.raises(OSError):
        write_json_atomic(blocked, {"round": 2})  # a directory is in the way: the rename fails
    assert sorted(p.name for p in (tmp_path / "rounds").iterdir()) == ["r001.json", "taken"]

    write_json_atomic(target, {"round": 1, "done": True, "at": Path("/x")})
    assert json.loads(target.read_text()) == {"round": 1, "done": True, "at": "/x"}
