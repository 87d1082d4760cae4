"""Versioned LoRA adapter directories and their manifests.

An adapter is a PEFT directory (`adapter_config.json` + weights, written by `save_pretrained`)
plus `cowest_manifest.json`: base model id and fingerprint, parent adapter, data hash, pair
counts, training config, final metrics and creation time. Versions live side by side under one
root: `adapters/v0001/`, `adapters/v0002/`, ...

Promotion: `root/current` is a symbolic link to the promoted version, replaced atomically (a
reader sees the old or the new version, never a half-written pointer); `root/promotions.jsonl`
keeps the history, which `rollback` walks back. A graph whose weak model loaded
`adapter="root/current"` follows the link between runs (`WeakModel.refresh_adapter`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from cowest_graph.atomic import write_json_atomic

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


def adapter_sha256(path: str | Path) -> str:
    """SHA-256 of an adapter's weights (`adapter_model.safetensors`): the same training gives the same.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> _ = (d / "adapter_model.safetensors").write_bytes(b"w")
        >>> adapter_sha256(d)[:12]
        '50e721e49c01'
    """
    return hashlib.sha256((Path(path) / "adapter_model.safetensors").read_bytes()).hexdigest()


def write_manifest(path: str | Path, manifest: dict[str, Any]) -> Path:
    """Write the manifest next to the adapter weights (atomically) and return its path."""
    return write_json_atomic(Path(path) / MANIFEST, manifest, sort_keys=True)


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


def latest_adapter(root: str | Path, kind: str | None = None) -> Path | None:
    """The newest complete adapter version under `root` (one that has a manifest), or None;
    with `kind` (`"sft"`, `"dpo"`), the newest of that kind.

    Example:
        >>> latest_adapter("adapters", kind="sft")  # doctest: +SKIP
        PosixPath('adapters/v0001')
    """
    versions = _complete_versions(root)
    if kind is not None:
        versions = [p for p in versions if (read_manifest(p) or {}).get("kind") == kind]
    return max(versions, key=lambda p: int(p.name[1:]), default=None)


def _complete_versions(root: str | Path) -> list[Path]:
    """Version directories under `root` that have a manifest (a version is complete once it has)."""
    return [p for p in Path(root).glob("v*") if _VERSION.match(p.name) and (p / MANIFEST).exists()]


CURRENT = "current"
HISTORY = "promotions.jsonl"


def current_adapter(root: str | Path) -> Path | None:
    """The promoted version's directory (`root/current` resolved), or None before any promotion.

    Example:
        >>> current_adapter("adapters")  # doctest: +SKIP
        PosixPath('adapters/v0003')
    """
    link = Path(root) / CURRENT
    return Path(root) / os.readlink(link) if link.is_symlink() else None


def promote(root: str | Path, version: str, *, action: str = "promote") -> Path:
    """Point `root/current` at `version` (atomic symlink swap) and record it in the history.

    Example:
        >>> promote("adapters", "v0002")  # doctest: +SKIP
        PosixPath('adapters/v0002')
    """
    root = Path(root)
    target = root / version
    if not (target / MANIFEST).exists():
        raise AdapterError(f"cannot promote {target}: not a complete adapter version (no {MANIFEST})")
    tmp = root / f".{CURRENT}.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    os.symlink(version, tmp)
    os.replace(tmp, root / CURRENT)
    with (root / HISTORY).open("a") as history:
        history.write(json.dumps({"version": version, "action": action, "at": time.time()}) + "\n")
    return target


def promotion_history(root: str | Path) -> list[dict[str, Any]]:
    """Every promotion and rollback, oldest first."""
    file = Path(root) / HISTORY
    if not file.exists():
        return []
    return [json.loads(line) for line in file.read_text().splitlines() if line.strip()]


def rollback(root: str | Path, to: str | None = None) -> Path:
    """Point `root/current` back at `to`, or at the version promoted before the current one.

    Example:
        >>> rollback("adapters")  # doctest: +SKIP
        PosixPath('adapters/v0001')
    """
    current = current_adapter(root)
    if to is None:
        promoted: list[str] = []
        for entry in promotion_history(root):  # replay: a rollback pops the versions after it
            if entry["action"] == "rollback" and entry["version"] in promoted:
                del promoted[promoted.index(entry["version"]) + 1 :]
            else:
                promoted.append(entry["version"])
        earlier = [v for v in promoted if current is None or v != current.name]
        if not earlier:
            raise AdapterError(
                f"nothing to roll back to in {root}: no version was promoted before the current one"
            )
        to = earlier[-1]
    return promote(root, to, action="rollback")


def list_adapters(root: str | Path) -> list[dict[str, Any]]:
    """One row per complete version: parent, pairs, held-out score, gate decision, date, current.

    Example:
        >>> [row["version"] for row in list_adapters("adapters")]  # doctest: +SKIP
        ['v0001', 'v0002']
    """
    root = Path(root)
    current = current_adapter(root)
    rows = []
    for path in sorted(_complete_versions(root), key=lambda p: int(p.name[1:])):
        manifest = read_manifest(path) or {}
        gate = manifest.get("gate") or {}
        rows.append(
            {
                "version": path.name,
                "kind": manifest.get("kind"),
                "parent": (manifest.get("parent_adapter") or {}).get("version"),
                "pairs": (manifest.get("counts") or {}).get("train"),
                "held_out_accuracy": (gate.get("candidate") or {}).get("accuracy"),
                "gate": None if not gate else ("promoted" if gate.get("promote") else "rejected"),
                "created_at": manifest.get("created_at"),
                "current": current is not None and current.name == path.name,
            }
        )
    return rows
