"""Malformed tensor entries of a safetensors header: an ArtifactError naming the tensor and the problem."""

from __future__ import annotations

import json

import pytest

from cellzoo.artifacts import read_safetensors_header
from cellzoo.errors import ArtifactError

F32 = {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}


def safetensors_bytes(header: dict, data: bytes = b"\0" * 4) -> bytes:
    """8-byte little-endian header length, the JSON header, then the data."""
    raw = json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw + data


def test_a_well_formed_file_is_accepted(tmp_path):
    path = tmp_path / "ok.safetensors"
    path.write_bytes(safetensors_bytes({"w": F32, "__metadata__": {"format": "np"}}))
    assert read_safetensors_header(path)["w"] == F32


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({**F32, "extra": 1}, r"tensor 'w' has the unknown key\(s\) 'extra'"),
        ({"dtype": "F32", "shape": [1], "offsets": [0, 4]}, r"tensor 'w' lacks data_offsets and has the unknown key"),
        ({"dtype": "F32", "shape": [1]}, "tensor 'w' lacks data_offsets"),
        ({}, "tensor 'w' lacks data_offsets, dtype, shape"),
        ([0, 4], "tensor 'w' is a JSON list, not an object"),
        ("F32", "tensor 'w' is a JSON str, not an object"),
        ({**F32, "dtype": ["F32"]}, r"tensor 'w' has dtype \['F32'\]"),
        ({**F32, "dtype": 4}, "tensor 'w' has dtype 4"),
        ({**F32, "shape": 1}, "tensor 'w' has shape 1"),
        ({**F32, "shape": [True]}, r"tensor 'w' has shape \[True\]"),
        ({**F32, "shape": [1.0]}, r"tensor 'w' has shape \[1.0\]"),
        ({**F32, "data_offsets": [False, 4]}, r"tensor 'w' has data_offsets \[False, 4\]"),
        ({**F32, "data_offsets": [0, 4, 8]}, r"tensor 'w' has data_offsets \[0, 4, 8\]"),
        ({**F32, "data_offsets": {"begin": 0}}, "tensor 'w' has data_offsets"),
        ({**F32, "data_offsets": [0, "4"]}, "tensor 'w' has data_offsets"),
    ],
    ids=[
        "extra-key",
        "extra-and-missing",
        "missing-key",
        "empty",
        "list",
        "string",
        "dtype-list",
        "dtype-number",
        "shape-number",
        "shape-bool",
        "shape-float",
        "offsets-bool",
        "offsets-three",
        "offsets-object",
        "offsets-text",
    ],
)
def test_a_malformed_entry_is_an_artifact_error_naming_tensor_and_problem(tmp_path, entry, message):
    path = tmp_path / "w.safetensors"
    path.write_bytes(safetensors_bytes({"w": entry}))
    with pytest.raises(ArtifactError, match=message) as info:
        read_safetensors_header(path)
    assert str(path) in str(info.value) and "is not a valid safetensors file" in str(info.value)
