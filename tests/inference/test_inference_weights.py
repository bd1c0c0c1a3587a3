"""Weights serialisation, and refusal of checkpoints that would run code."""

from __future__ import annotations

import os
import pickle
import shlex
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch

from inference.architectures import build_model
from inference.predict import predict_proba
from inference.training import TrainingResult
from inference.weights import (
    InvalidWeightsError,
    UnsafeWeightsError,
    load_into,
    read_state_dict_file,
    state_dict_from_bytes,
    state_dict_to_bytes,
)


class _ShellPayload:
    """Unpickling this runs a shell command that creates `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


class _OpenPayload:
    """Unpickling this creates `marker` through open()."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


@pytest.mark.slow
def test_safetensors_bytes_round_trip_gives_identical_outputs(
    trained: TrainingResult, small_dataset: tuple[np.ndarray, np.ndarray]
) -> None:
    blob = state_dict_to_bytes(trained.model)
    assert isinstance(blob, bytes) and safetensors.torch.load(blob).keys()
    state = state_dict_from_bytes(blob)
    assert not any(k.startswith("features.") for k in state)  # front-end is not stored

    fresh = build_model("small_cnn", len(trained.labels))
    load_into(fresh, state)
    x = small_dataset[0]
    np.testing.assert_array_equal(predict_proba(fresh, x), predict_proba(trained.model, x))


def test_state_dict_to_bytes_handles_shared_and_strided_tensors() -> None:
    base = torch.arange(12.0).reshape(3, 4)
    state = {"a": base, "b": base.t(), "c": base[:, 1]}  # shared storage + non-contiguous
    restored = state_dict_from_bytes(state_dict_to_bytes(state))
    for key, value in state.items():
        assert torch.equal(restored[key], value)


def test_safetensors_file_loads(tmp_path: Path) -> None:
    model = build_model("small_cnn", 5)
    path = tmp_path / "weights.safetensors"
    path.write_bytes(state_dict_to_bytes(model))
    state = read_state_dict_file(path)
    assert state.keys() == model.state_dict().keys()
    load_into(build_model("small_cnn", 5), state)


@pytest.mark.parametrize("wrap", [False, True])
def test_legit_torch_checkpoint_loads(tmp_path: Path, wrap: bool) -> None:
    torch.manual_seed(0)
    model = build_model("small_cnn", 5)
    path = tmp_path / ("ckpt.pth" if wrap else "ckpt.pt")
    payload = {"state_dict": model.state_dict(), "epoch": 3} if wrap else model.state_dict()
    torch.save(payload, path)

    state = read_state_dict_file(path)
    other = build_model("small_cnn", 5)
    load_into(other, state)
    for key, value in model.state_dict().items():
        assert torch.equal(other.state_dict()[key], value)


@pytest.mark.parametrize("payload_cls", [_ShellPayload, _OpenPayload])
@pytest.mark.parametrize("zip_format", [True, False])
def test_malicious_pickle_is_refused_and_never_runs(
    tmp_path: Path, payload_cls: type, zip_format: bool
) -> None:
    # Control: the payload is live - plain unpickling really does create the marker.
    control = tmp_path / "control-marker"
    pickle.loads(pickle.dumps(payload_cls(control)))
    assert control.exists()

    marker = tmp_path / "pwned-marker"
    path = tmp_path / "evil.pt"
    torch.save(
        {"weight": torch.ones(2), "evil": payload_cls(marker)},
        path,
        _use_new_zipfile_serialization=zip_format,
    )
    with pytest.raises(UnsafeWeightsError) as excinfo:
        read_state_dict_file(path)
    message = str(excinfo.value)
    assert message.startswith("refusing to unpickle evil.pt: ") and "\n" not in message
    assert not marker.exists()


def test_pickled_module_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "whole_model.pt"
    torch.save(build_model("small_cnn", 5), path)  # full module pickles classes -> unsafe
    with pytest.raises(UnsafeWeightsError, match="AudioClassifier"):
        read_state_dict_file(path)


def test_non_tensor_values_rejected(tmp_path: Path) -> None:
    path = tmp_path / "mixed.pt"
    torch.save({"w": torch.ones(2), "lr": 0.1}, path)
    with pytest.raises(InvalidWeightsError, match="'lr' \\(float\\)"):
        read_state_dict_file(path)
    list_path = tmp_path / "list.pt"
    torch.save([torch.ones(1)], list_path)
    with pytest.raises(InvalidWeightsError, match="expected a state dict"):
        read_state_dict_file(list_path)


@pytest.mark.parametrize("name", ["garbage.pt", "garbage.safetensors", "garbage.bin"])
def test_corrupt_files_rejected(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"this is not a weights file")
    with pytest.raises(ValueError):
        read_state_dict_file(path)


def test_missing_file_and_bad_bytes_rejected(tmp_path: Path) -> None:
    with pytest.raises(InvalidWeightsError, match="not found"):
        read_state_dict_file(tmp_path / "absent.safetensors")
    with pytest.raises(InvalidWeightsError):
        state_dict_from_bytes(b"")
    with pytest.raises(InvalidWeightsError):
        state_dict_from_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")


def test_load_into_reports_missing_and_unexpected_keys() -> None:
    model = build_model("small_cnn", 5)
    state = dict(model.state_dict())
    state.pop("backbone.head.bias")
    state["backbone.extra"] = torch.zeros(1)
    with pytest.raises(ValueError) as excinfo:
        load_into(model, state)
    message = str(excinfo.value)
    assert "missing keys: backbone.head.bias" in message
    assert "unexpected keys: backbone.extra" in message


def test_load_into_reports_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="size mismatch for backbone.head.weight"):
        load_into(build_model("small_cnn", 5), build_model("small_cnn", 3).state_dict())


def test_safetensors_chunks_write_what_safetensors_reads_back() -> None:
    """The streaming writer (a .pt converted a tensor at a time) against safetensors' reader:
    every dtype it names, a non-contiguous view, an empty tensor and a 0-d scalar."""
    from inference.weights import safetensors_chunks, state_dict_from_bytes

    state = {
        "f32": torch.randn(4, 3),
        "f16": torch.randn(5).half(),
        "bf16": torch.randn(2, 2).bfloat16(),
        "f64": torch.randn(3).double(),
        "i64": torch.arange(7),
        "i8": torch.tensor([-1, 2], dtype=torch.int8),
        "u8": torch.tensor([255], dtype=torch.uint8),
        "flag": torch.tensor([True, False]),
        "transposed": torch.randn(3, 5).t(),
        "empty": torch.zeros(0, 4),
        "scalar": torch.tensor(42),
    }
    data = b"".join(bytes(piece) for piece in safetensors_chunks(state))
    back = state_dict_from_bytes(data)
    assert set(back) == set(state)
    for name, tensor in state.items():
        assert back[name].dtype == tensor.dtype and torch.equal(back[name], tensor), name
