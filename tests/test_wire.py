"""The verification's wire format (``grading/_verifier.py``: ``encode``/``decode``): plain
messages travel as JSON and raw tensor bytes, exactly; anything else as ``torch.save``'s
payload; and what the sandbox sends is never unpickled."""

from __future__ import annotations

import io
import json
import math
import os
import pickle
import struct

import pytest
import torch

from grading._verifier import decode, encode


def _same(a, b) -> bool:
    """Equal values, types, dtypes, shapes, strides and devices (NaN equal to NaN, -0.0
    apart from 0.0)."""
    if isinstance(a, torch.Tensor):
        return (
            type(a) is type(b)
            and (a.dtype, a.shape, a.stride(), a.device) == (b.dtype, b.shape, b.stride(), b.device)
            and (a.device.type == "meta" or _bytes(a) == _bytes(b))
        )
    if type(a) in (list, tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if type(a) is dict:
        return type(b) is dict and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if type(a) is float:
        return type(b) is float and (
            (math.isnan(a) and math.isnan(b))
            or (a == b and math.copysign(1, a) == math.copysign(1, b))
        )
    return type(a) is type(b) and a == b


def _bytes(tensor: torch.Tensor) -> bytes:
    """A CPU tensor's values, bit for bit (NaN, -0.0 and complex included)."""
    return tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def _message() -> dict:
    g = torch.Generator().manual_seed(0)
    return {
        "op": "call",
        "function": "cross_entropy",
        "args": [
            torch.randn(8, 5, generator=g),
            torch.randint(0, 5, (8,), generator=g),
            (1, 2.5, -0.0, float("nan"), float("inf"), -float("inf"), None, True, 2**70, "s"),
        ],
        "kwargs": {
            "weight": torch.rand(5, generator=g, dtype=torch.float64),
            "on_meta": torch.empty(3, 4, device="meta").t(),  # strides kept on meta
            "mask": torch.tensor([True, False, True]),
            "empty": torch.empty(0, 3),
            "scalar": torch.tensor(3.5),
            "half": torch.randn(3, generator=g).half(),
            "bfloat": torch.randn(2, generator=g).bfloat16(),
            "complex": torch.randn(2, generator=g, dtype=torch.complex64),
            "bytes": torch.tensor([0, 255], dtype=torch.uint8),
            "nested": {"list": [[1, 2], [3]], "dict": {"a": None}},
        },
        "grad": [0],
        "forbid": [{"label": "F.cross_entropy", "functions": [("torch.nn.functional", "x")]}],
    }


def test_a_plain_message_travels_as_json_and_comes_back_exactly():
    message = _message()
    payload = encode(message)
    assert payload[:1] == b"J"
    back = decode(payload)
    assert _same(message, back)
    # A tensor that comes back owns its memory, writable.
    back["args"][0].add_(1)


def test_the_fast_payload_is_smaller_than_torch_saves():
    buffer = io.BytesIO()
    torch.save(_message(), buffer)
    assert len(encode(_message())) < len(buffer.getvalue()) / 2


@pytest.mark.parametrize(
    "name",
    ["non-contiguous", "shared memory", "parameter", "dtype", "size", "integer key", "ordered"],
)
def test_anything_else_travels_as_torch_save_and_keeps_what_it_is(name):
    x = torch.arange(16.0).reshape(4, 4)
    message = {
        "non-contiguous": lambda: {"a": x.t()},
        "shared memory": lambda: {"a": x, "b": x[1]},
        "parameter": lambda: {"a": torch.nn.Parameter(torch.ones(2))},
        "dtype": lambda: {"a": torch.float64},
        "size": lambda: {"a": torch.Size([2, 3])},
        "integer key": lambda: {1: torch.ones(1)},
        "ordered": lambda: __import__("collections").OrderedDict(a=1),
    }[name]()
    payload = encode(message)
    assert payload[:1] == b"T"
    back = decode(payload)
    assert type(back) is type(message) and list(back) == list(message)
    if name == "non-contiguous":
        assert back["a"].stride() == (1, 4) and torch.equal(back["a"], x.t())
    if name == "shared memory":
        back["a"][1, 0] = -1.0
        assert back["b"][0].item() == -1.0  # still one storage
    if name == "parameter":
        assert type(back["a"]) is torch.nn.Parameter
    if name in ("dtype", "size"):
        assert back["a"] == message["a"] and type(back["a"]) is type(message["a"])


def _fast(header) -> bytes:
    text = json.dumps(header).encode()
    return b"J" + struct.pack(">I", len(text)) + text


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"X{}",
        b"J\x00\x00",
        b"J\x00\x00\x00\x09{}",  # header longer than the payload
        _fast({"a": 1}),  # an object that is not a tagged container
        _fast({"d": [[1, 2]]}),  # a non-string key
        _fast({"T": ["float32", [2], 0, 8]}),  # tensor bytes missing
        _fast({"T": ["float32", [2], 0, 4]}) + b"\0" * 8,  # byte count and shape disagree
        _fast({"T": ["float32", [-2], 0, 0]}),  # negative size
        _fast({"T": ["float32", [2.0], 0, 8]}) + b"\0" * 8,  # not an integer
        _fast({"T": ["object", [1], 0, 8]}) + b"\0" * 8,  # not a dtype
        _fast({"M": ["float32", [2, 2], [1]]}),  # strides and shape disagree
        _fast({"t": 5}),
    ],
)
def test_a_malformed_payload_raises_value_error(payload):
    with pytest.raises(ValueError):
        decode(payload)


def test_a_pickle_from_the_sandbox_is_never_unpickled(tmp_path):
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    for payload in (b"T" + pickle.dumps(Exploit()), pickle.dumps(Exploit())):
        with pytest.raises(Exception):  # noqa: B017 (torch's UnpicklingError, or ours)
            decode(payload)
    assert not marker.exists()
