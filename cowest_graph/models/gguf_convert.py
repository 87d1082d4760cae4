"""GGUF files for the llama.cpp weak backend, written with the `gguf` package's reader, writer and
tensor-name maps (llama.cpp's own formats, no hand-made layout):

- `lora_to_gguf`: a PEFT LoRA adapter directory -> a GGUF LoRA adapter (`adapter_model.gguf`)
  that llama.cpp applies on top of the base GGUF at run time (hot-swappable, no merge);
- `requantize_gguf` / `weak_gguf`: the embedded SmolLM2 GGUF re-encoded as another tensor type
  (F16, Q8_0; the shipped file is Q4_1), cached once.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cowest_graph.models.files import embedded_gguf_path, model_cache_dir

ADAPTER_GGUF = "adapter_model.gguf"
"""File name of an adapter's llama.cpp form, written beside `adapter_model.safetensors`."""

PRECISIONS = ("Q4_1", "Q8_0", "F16")
"""GGUF tensor types the weak backend offers for the embedded model (`Q4_1` is the shipped file)."""


class GGUFConversionError(ValueError):
    """An adapter or model that cannot be written as GGUF (the message says why)."""


def _permute(weights: Any, n_head: int) -> Any:
    """llama.cpp's row order for rotary q/k projections (`convert_hf_to_gguf.LlamaModel.permute`)."""
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def _field(reader: Any, key: str) -> Any:
    field = reader.get_field(key)
    return field.contents() if field is not None else None


def lora_to_gguf(adapter_dir: str | Path, *, base_gguf: str | Path | None = None) -> Path:
    """Write `adapter_dir/adapter_model.gguf`, the llama.cpp form of a PEFT LoRA adapter.

    Tensor names come from `gguf`'s map for the base model's architecture; the LoRA B matrices
    of the rotary q/k projections get the same row permutation that llama.cpp's converter gave
    the base weights, so `W + B A` matches the base GGUF's layout. The scale is PEFT's
    `lora_alpha / r` (llama.cpp computes it from `adapter.lora.alpha` and the rank).

    Example:
        >>> lora_to_gguf("adapters/v0001")  # doctest: +SKIP
        PosixPath('adapters/v0001/adapter_model.gguf')
    """
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    adapter_dir = Path(adapter_dir)
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    if config.get("peft_type", "LORA") != "LORA":
        raise GGUFConversionError(f"{adapter_dir}: only LoRA adapters convert to GGUF")
    if config.get("use_rslora") or config.get("use_dora"):
        raise GGUFConversionError(f"{adapter_dir}: rsLoRA/DoRA adapters have no llama.cpp form")
    reader = gguf.GGUFReader(str(base_gguf or embedded_gguf_path()))
    arch_name = str(_field(reader, gguf.Keys.General.ARCHITECTURE))
    n_head = int(_field(reader, f"{arch_name}.attention.head_count"))
    n_kv = int(_field(reader, f"{arch_name}.attention.head_count_kv") or n_head)
    n_blocks = int(_field(reader, f"{arch_name}.block_count"))
    arch = next((a for a, n in gguf.MODEL_ARCH_NAMES.items() if n == arch_name), None)
    if arch is None:
        raise GGUFConversionError(f"unknown GGUF architecture {arch_name!r}")
    names = gguf.get_tensor_name_map(arch, n_blocks)
    base_tensors = {t.name for t in reader.tensors}

    tensors = load_file(str(adapter_dir / "adapter_model.safetensors"))
    out = adapter_dir / ADAPTER_GGUF
    tmp = out.with_name(f".{out.name}.partial")
    writer = gguf.GGUFWriter(str(tmp), arch_name)
    writer.add_string(gguf.Keys.General.TYPE, gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(config["lora_alpha"]))
    written = 0
    for key in sorted(tensors):
        if ".lora_A." not in key and ".lora_B." not in key:
            raise GGUFConversionError(f"{adapter_dir}: tensor {key} is not a LoRA matrix (modules_to_save?)")
        hf_module = key.removeprefix("base_model.model.").split(".lora_")[0]
        gguf_name = names.get_name(hf_module)
        if gguf_name is None or f"{gguf_name}.weight" not in base_tensors:
            raise GGUFConversionError(f"{adapter_dir}: no base GGUF tensor for {hf_module}")
        data = np.ascontiguousarray(tensors[key].astype(np.float32))
        part = "a" if ".lora_A." in key else "b"
        if part == "b" and hf_module.endswith("q_proj"):
            data = np.ascontiguousarray(_permute(data, n_head))
        elif part == "b" and hf_module.endswith("k_proj"):
            data = np.ascontiguousarray(_permute(data, n_kv))
        writer.add_tensor(f"{gguf_name}.weight.lora_{part}", data)
        written += 1
    if not written:
        raise GGUFConversionError(f"{adapter_dir}: the adapter has no LoRA tensors")
    return _write(writer, tmp, out)


def requantize_gguf(src: str | Path, dst: str | Path, precision: str) -> Path:
    """Re-encode a GGUF model's matrices as `precision` (F16, Q8_0, ...); metadata is copied.

    Tensors are dequantised with `gguf.quants` and quantised again; one-dimensional tensors
    (norms) stay F32. Written under a temporary name and renamed.

    Example:
        >>> requantize_gguf("model.Q4_1.gguf", "model.F16.gguf", "F16")  # doctest: +SKIP
    """
    import gguf
    import numpy as np
    from gguf import GGMLQuantizationType as Q

    target = Q[precision]
    reader = gguf.GGUFReader(str(src))
    dst = Path(dst)
    tmp = dst.with_name(f".{dst.name}.partial")
    writer = gguf.GGUFWriter(str(tmp), str(_field(reader, gguf.Keys.General.ARCHITECTURE)))
    file_types = {"F16": gguf.LlamaFileType.MOSTLY_F16, "Q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue
        value = field.contents()
        if field.name == gguf.Keys.General.FILE_TYPE and precision in file_types:
            value = int(file_types[precision])
        sub_type = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, value, field.types[0], sub_type=sub_type)
    for tensor in reader.tensors:
        shape = tuple(int(x) for x in reversed(tensor.shape))  # numpy order
        values = gguf.quants.dequantize(tensor.data, tensor.tensor_type).reshape(shape)
        if len(shape) < 2:
            writer.add_tensor(tensor.name, np.ascontiguousarray(values.astype(np.float32)))
        elif target == Q.F16:
            writer.add_tensor(tensor.name, values.astype(np.float16))
        else:
            packed = gguf.quants.quantize(values.astype(np.float32), target)
            writer.add_tensor(tensor.name, packed, raw_dtype=target)
    return _write(writer, tmp, dst)


def _write(writer: Any, tmp: Path, final: Path) -> Path:
    """Write the GGUF under its temporary name, then rename it: the file appears whole or not at all."""
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp, final)
    return final


def weak_gguf(precision: str = "Q4_1") -> Path:
    """The embedded SmolLM2 GGUF in `precision` (one of `PRECISIONS`), converted once and cached.

    Example:
        >>> weak_gguf("Q8_0").name  # doctest: +SKIP
        'SmolLM2-135M-Instruct.Q8_0.gguf'
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    shipped = embedded_gguf_path()
    if precision == "Q4_1":
        return shipped
    path = model_cache_dir() / "gguf" / f"SmolLM2-135M-Instruct.{precision}.gguf"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        requantize_gguf(shipped, path, precision)
    return path
