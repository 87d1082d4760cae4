"""Files written whole or not at all.

A manifest, a round record or a benchmark's kept condition is read back after a crash; a reader
must see the old file or the new one, never half of one. `write_json_atomic` writes to a hidden
sibling named after the process and renames it over the target (`os.replace` is atomic on POSIX
within one file system); if anything fails on the way, the sibling is removed and the old file
stays as it was.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_json_atomic(
    path: str | Path,
    data: Any,
    *,
    indent: int | None = 2,
    sort_keys: bool = False,
) -> Path:
    """Write `data` as JSON to `path` atomically (parents created) and return the path.

    Values JSON cannot hold are written as their `str` (timestamps, paths).

    Example:
        >>> import tempfile
        >>> p = write_json_atomic(Path(tempfile.mkdtemp()) / "a" / "round.json", {"round": 1})
        >>> json.loads(p.read_text())
        {'round': 1}
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=indent, sort_keys=sort_keys, default=str)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
