"""Weights serialisation: safetensors by default; torch checkpoints only via weights_only loads."""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from safetensors import SafetensorError
from torch import nn

_WRAPPER_KEYS = ("state_dict", "model_state_dict")
_TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")


class UnsafeWeightsError(ValueError):
    """A checkpoint needs arbitrary code (pickle globals) to load and was refused."""


class InvalidWeightsError(ValueError):
    """A weights file/blob is corrupt or is not a flat {name: tensor} mapping."""


def _checked_state_dict(obj: Any, source: str) -> dict[str, torch.Tensor]:
    """Unwrap {"state_dict": ...} and insist on str -> Tensor entries only."""
    if isinstance(obj, Mapping):
        for key in _WRAPPER_KEYS:
            if key in obj and isinstance(obj[key], Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping):
        raise InvalidWeightsError(
            f"{source} holds a {type(obj).__name__}, expected a state dict of tensors"
        )
    bad = [
        f"{k!r} ({type(v).__name__})"
        for k, v in obj.items()
        if not isinstance(k, str) or not isinstance(v, torch.Tensor)
    ]
    if bad:
        shown = ", ".join(bad[:5]) + (" ..." if len(bad) > 5 else "")
        raise InvalidWeightsError(f"{source} has non-tensor entries: {shown}")
    return dict(obj)


def state_dict_to_bytes(model: nn.Module | Mapping[str, torch.Tensor]) -> bytes:
    """Serialise a model's state_dict (or a state dict) to safetensors bytes."""
    state = model.state_dict() if isinstance(model, nn.Module) else model
    state = _checked_state_dict(state, "state dict")
    # clone(): safetensors rejects tensors sharing storage (views, tied weights).
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    return safetensors.torch.save(tensors)


def state_dict_from_bytes(data: bytes) -> dict[str, torch.Tensor]:
    """Inverse of state_dict_to_bytes; safetensors cannot execute code."""
    if not data:
        raise InvalidWeightsError("empty weights data")
    try:
        return safetensors.torch.load(bytes(data))
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise InvalidWeightsError(f"invalid safetensors data: {exc}") from exc


def _one_line(exc: BaseException) -> str:
    """torch's weights_only errors are long essays; keep the sentence naming the culprit."""
    text = str(exc).split("Check the documentation of torch.load", 1)[0]
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        reason = lines[0] if lines else ""
    else:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        reason = lines[-1] if lines else ""
    for boilerplate in (" Please use", " In PyTorch 2.6"):
        reason = reason.split(boilerplate, 1)[0]
    return reason or type(exc).__name__


def _is_pickle_or_zip(path: Path) -> bool:
    """torch.save output starts with a zip header or a protocol>=2 pickle opcode."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    return head.startswith((b"PK\x03\x04", b"\x80"))


def _is_refusal(exc: Exception, path: Path) -> bool:
    """Did the weights-only loader refuse content (vs. the file simply being garbage)?"""
    text = str(exc)
    if isinstance(exc, pickle.UnpicklingError):
        # A forbidden GLOBAL means code; other refused opcodes count too when the file really
        # is a torch zip / pickle. Plain garbage (not a pickle at all) is just corrupt.
        return "GLOBAL" in text or _is_pickle_or_zip(path)
    return isinstance(exc, RuntimeError) and "weights_only" in text  # e.g. TorchScript


def _looks_like_safetensors(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(9)
    return len(head) == 9 and head[8:9] == b"{"  # u64 header length, then JSON


def is_safetensors_file(path: str | os.PathLike[str]) -> bool:
    p = Path(path)
    return p.suffix.lower() == ".safetensors" or (
        p.suffix.lower() not in _TORCH_SUFFIXES and _looks_like_safetensors(p)
    )


def safetensors_layout(path: str | os.PathLike[str]) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes from a .safetensors header, without reading the tensors."""
    p = Path(path)
    try:
        with safetensors.safe_open(str(p), framework="pt") as fh:
            return {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}
    except (SafetensorError, ValueError, RuntimeError, OSError) as exc:
        raise InvalidWeightsError(f"invalid safetensors file {p.name}: {exc}") from exc


def read_state_dict_file(
    path: str | os.PathLike[str], mmap: bool = False
) -> dict[str, torch.Tensor]:
    """Load a .safetensors file or a torch .pt/.pth checkpoint without running pickled code.
    With ``mmap`` a checkpoint's tensors are mapped from the file, not read into memory (the
    zip format of torch.save since 1.6; an older one is read whole)."""
    p = Path(path)
    if not p.is_file():
        raise InvalidWeightsError(f"weights file not found: {p}")
    suffix = p.suffix.lower()
    if suffix == ".safetensors" or (suffix not in _TORCH_SUFFIXES and _looks_like_safetensors(p)):
        try:
            return _checked_state_dict(safetensors.torch.load_file(str(p), device="cpu"), p.name)
        except (SafetensorError, ValueError, RuntimeError, OSError) as exc:
            if isinstance(exc, InvalidWeightsError):
                raise
            raise InvalidWeightsError(f"invalid safetensors file {p.name}: {exc}") from exc
    try:
        # weights_only=True passed explicitly: TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD cannot override it.
        obj = _torch_load(p, mmap)
    except Exception as exc:  # the weights-only unpickler raises many types on bad input
        if _is_refusal(exc, p):
            raise UnsafeWeightsError(f"refusing to unpickle {p.name}: {_one_line(exc)}") from exc
        raise InvalidWeightsError(f"corrupt checkpoint {p.name}: {_one_line(exc)}") from exc
    return _checked_state_dict(obj, p.name)


def _torch_load(path: Path, mmap: bool) -> Any:
    if mmap and zipfile.is_zipfile(path):
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    return torch.load(path, map_location="cpu", weights_only=True)


_SAFETENSORS_DTYPES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}  # fmt: skip


def safetensors_chunks(state: Mapping[str, torch.Tensor]) -> Iterator[bytes | memoryview]:
    """A state dict in the safetensors format, as pieces to hash and write one after another:
    the header, then each tensor's bytes (a view of the tensor where it is contiguous, so a
    memory-mapped checkpoint is copied page by page, never held twice). Same bytes as
    ``state_dict_to_bytes`` reads back; little-endian hosts only, as safetensors itself."""
    state = _checked_state_dict(state, "state dict")
    names = sorted(state)
    header: dict[str, Any] = {}
    offset = 0
    for name in names:
        tensor = state[name]
        if tensor.dtype not in _SAFETENSORS_DTYPES:
            raise InvalidWeightsError(f"{name}: dtype {tensor.dtype} has no safetensors name")
        size = tensor.numel() * tensor.element_size()
        header[name] = {
            "dtype": _SAFETENSORS_DTYPES[tensor.dtype],
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # the data starts 8-byte aligned, as safetensors does
    yield len(encoded).to_bytes(8, "little") + encoded
    for name in names:
        tensor = state[name].detach().to("cpu").contiguous()  # a copy only if not contiguous
        if tensor.numel():
            yield memoryview(tensor.reshape(-1).view(torch.uint8).numpy())
        del tensor


def load_into(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> nn.Module:
    """Strictly load weights; mismatches raise one ValueError naming the offending keys."""
    state = _checked_state_dict(state_dict, "state dict")
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:

        def _fmt(keys: list[str]) -> str:
            return ", ".join(keys[:8]) + (f" (+{len(keys) - 8} more)" if len(keys) > 8 else "")

        parts = []
        if missing:
            parts.append(f"missing keys: {_fmt(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_fmt(unexpected)}")
        raise ValueError("weights do not match the model; " + "; ".join(parts))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # shape mismatches; torch lists them one per line
        details = "; ".join(line.strip() for line in str(exc).splitlines()[1:] if line.strip())
        raise ValueError(f"weights do not match the model: {details or exc}") from exc
    return model
