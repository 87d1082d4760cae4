"""Versioned LoRA adapter directories and their manifests.

An adapter is a PEFT directory (`adapter_config.json` + weights, written by `save_pretrained`)
plus `cowest_manifest.json`: base model id and fingerprint, parent adapter, data hash, pair
counts, training config, final metrics and creation time. Versions live side by side under one
root: `adapters/v0001/`, `adapters/v0002/`, ...
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

MANIFEST = "cowest_manifest.json"
_VERSION = re.compile(r"^v(\d{4,})$")


class AdapterError(ValueError):
    """An adapter directory is missing, malformed, or belongs to another base model."""


def read_manifest(path: str | Path) -> dict[str, Any] | None:
    """The adapter's manifest, or None for a plain PEFT directory without one.

    Example:
        >>> read_manifest("adapters/v0001")["version"]  # doctest: +SKIP
        'v0001'
    """
    file = Path(path) / MANIFEST
    if not file.exists():
        return None
    try:
        data = json.loads(file.read_text())
    except json.JSONDecodeError as exc:
        raise AdapterError(f"{file}: manifest is not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise AdapterError(f"{file}: manifest must be a JSON object")
    return data


def write_manifest(path: str | Path, manifest: dict[str, Any]) -> Path:
    """Write the manifest next to the adapter weights and return its path."""
    file = Path(path) / MANIFEST
    file.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
    return file


def validate_adapter_dir(path: str | Path, *, base_path: str | Path | None) -> None:
    """Check that `path` is a PEFT adapter trained on the base model at `base_path`.

    Raises `AdapterError` with one line naming the problem.

    Example:
        >>> validate_adapter_dir("adapters/v0001", base_path=weak.base_path)  # doctest: +SKIP
    """
    from cowest_graph.models.files import base_model_fingerprint

    path = Path(path)
    if not (path / "adapter_config.json").exists():
        raise AdapterError(f"{path} is not a PEFT adapter directory (no adapter_config.json)")
    manifest = read_manifest(path)
    if manifest is None or base_path is None:
        return
    expected = manifest.get("base_model_fingerprint")
    actual = base_model_fingerprint(base_path)
    if expected and expected != actual:
        raise AdapterError(
            f"adapter {path} was trained on base model {manifest.get('base_model_id')!r} "
            f"(fingerprint {expected}), not on the loaded base (fingerprint {actual})"
        )


def next_version(root: str | Path) -> str:
    """The next free version name under `root` (`v0001`, `v0002`, ...).

    Example:
        >>> next_version("empty_dir")  # doctest: +SKIP
        'v0001'
    """
    root = Path(root)
    taken = [int(m.group(1)) for p in root.glob("v*") if p.is_dir() and (m := _VERSION.match(p.name))]
    return f"v{max(taken, default=0) + 1:04d}"


def latest_adapter(root: str | Path) -> Path | None:
    """The newest complete adapter version under `root` (one that has a manifest), or None."""
    root = Path(root)
    complete = [p for p in root.glob("v*") if _VERSION.match(p.name) and (p / MANIFEST).exists()]
    return max(complete, key=lambda p: int(p.name[1:]), default=None)
