"""The remote backend's pure parts: the circuit, the served names, the settings, reading answers
(the protocol against a real server is in tests/e2e/test_superres_remote.py)."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest

from origin.superres.policy import SuperResSettings
from origin.superres.registry import available_models
from origin.superres.remote import HEADER_LENGTH, Circuit, RemoteFailed, _output, served_name


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_circuit_opens_after_failures_in_a_row_and_one_trial_closes_it():
    clock = Clock()
    circuit = Circuit(failures=2, retry_s=5, clock=clock)
    circuit.failed()
    circuit.succeeded()  # not in a row
    circuit.failed()
    assert circuit.allows() and circuit.closed
    circuit.failed()
    assert not circuit.allows() and not circuit.closed
    clock.now += 5
    assert circuit.allows()  # the one trial
    assert not circuit.allows()  # the others wait for its outcome
    circuit.failed()
    assert not circuit.allows()
    clock.now += 5
    assert circuit.allows()
    circuit.succeeded()
    assert circuit.closed and circuit.allows() and circuit.allows()


def test_a_trial_that_never_reports_does_not_keep_the_circuit_open_forever():
    clock = Clock()
    circuit = Circuit(failures=1, retry_s=2, clock=clock)
    circuit.failed()
    clock.now += 2
    assert circuit.allows()  # its caller is cancelled and reports nothing
    clock.now += 2
    assert circuit.allows()


def test_served_names_default_to_the_file_stem_and_map_by_label_first():
    spec = next(m for m in available_models() if m.scale == 2)
    assert served_name(spec, {}) == spec.path.stem
    assert served_name(spec, {spec.name: "by_name"}) == "by_name"
    assert served_name(spec, {spec.name: "by_name", spec.label: "by_label"}) == "by_label"


def test_settings_name_what_is_wrong():
    assert SuperResSettings(remote_models=("edgesr-x2 = a_b",)).served_models == {"edgesr-x2": "a_b"}
    for bad, words in (
        ({"backend": "triton"}, "backend"),
        ({"backend": "remote"}, "url"),
        ({"backend": "remote", "url": "grpc://sr:8001"}, "url"),
        ({"remote_models": ("edgesr-x2",)}, "remote_models"),
        ({"remote_batch": 0}, "remote_batch"),
        ({"remote_retry_s": 0}, "remote_retry_s"),
    ):
        with pytest.raises(ValueError, match=words):
            SuperResSettings(**bad)


def answer(outputs: list[dict], binary: bytes = b"") -> httpx.Response:
    head = json.dumps({"model_name": "m", "outputs": outputs}).encode()
    headers = {HEADER_LENGTH: str(len(head))} if binary else {}
    return httpx.Response(200, content=head + binary, headers=headers)


def test_answers_are_read_in_binary_and_in_json_and_checked():
    y = np.arange(2 * 3 * 4 * 4, dtype=np.float32).reshape(2, 3, 4, 4)
    other = np.zeros(3, np.float32)
    binary = answer(
        [
            {"name": "other", "datatype": "FP32", "shape": [3], "parameters": {"binary_data_size": other.nbytes}},
            {"name": "output", "datatype": "FP32", "shape": [2, 3, 4, 4], "parameters": {"binary_data_size": y.nbytes}},
        ],
        other.tobytes() + y.tobytes(),
    )
    assert np.array_equal(_output(binary, "output", (2, 3, 4, 4)), y)
    half = answer(
        [
            {
                "name": "output",
                "datatype": "FP16",
                "shape": [2, 3, 4, 4],
                "parameters": {"binary_data_size": y.nbytes // 2},
            }
        ],
        y.astype(np.float16).tobytes(),
    )
    assert np.array_equal(_output(half, "output", (2, 3, 4, 4)), y)
    plain = answer([{"name": "output", "datatype": "FP32", "shape": [2, 3, 4, 4], "data": y.ravel().tolist()}])
    assert np.array_equal(_output(plain, "output", (2, 3, 4, 4)), y)
    for response, words in (
        (plain, "expected"),  # asked for another shape
        (answer([{"name": "nope", "datatype": "FP32", "shape": [1], "data": [0]}]), "no output"),
        (httpx.Response(200, content=b"<html>gateway</html>"), "unreadable"),
        (answer([{"name": "output", "datatype": "FP32", "shape": [2, 3, 4, 4], "data": [1, 2]}]), "unreadable"),
    ):
        with pytest.raises(RemoteFailed, match=words) as failed:
            _output(response, "output", (2, 3, 8, 8) if response is plain else (2, 3, 4, 4))
        assert failed.value.outcome == "garbage"
