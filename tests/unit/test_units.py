"""dcor_wire.units: human durations and sizes in configuration documents."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from dcor_wire.units import ByteSize, Duration, parse_duration, parse_size


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (15, 15.0),
        (2.5, 2.5),
        (0, 0.0),
        ("15", 15.0),
        ("15s", 15.0),
        ("250ms", 0.25),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("1.5h", 5400.0),
        (" 30 s ", 30.0),
        ("0.5s", 0.5),
    ],
)
def test_parse_duration(value: Any, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)
    assert isinstance(parse_duration(value), float)


@pytest.mark.parametrize(
    "value",
    ["", "s", "15x", "15 sec", "fifteen", "-5s", "5m30s", "1e3s", "15S", True, False, None,
     [15], {"s": 15}],
)
def test_parse_duration_refuses(value: Any) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (1024, 1024),
        (2048.0, 2048),
        ("100", 100),
        ("100B", 100),
        ("512KB", 512_000),
        ("50MB", 50_000_000),
        ("2GB", 2_000_000_000),
        ("1KiB", 1024),
        ("64MiB", 64 * 2**20),
        ("1GiB", 2**30),
        ("1.5MB", 1_500_000),
        ("50mb", 50_000_000),  # units are case-insensitive
        (" 8 kib ", 8192),
    ],
)
def test_parse_size(value: Any, size: int) -> None:
    assert parse_size(value) == size
    assert isinstance(parse_size(value), int)


@pytest.mark.parametrize(
    "value", ["", "MB", "10TB", "ten MB", "-5MB", "5 M B", 1.5, True, None, ["1MB"]]
)
def test_parse_size_refuses(value: Any) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(value)


class _Cfg(BaseModel):
    every: Duration = 1.0
    cap: ByteSize = 1


def test_annotated_types_in_a_pydantic_model() -> None:
    cfg = _Cfg.model_validate({"every": "5m", "cap": "1MiB"})
    assert (cfg.every, cfg.cap) == (300.0, 2**20)


def test_annotated_types_report_the_bad_value() -> None:
    with pytest.raises(ValidationError) as info:
        _Cfg.model_validate({"every": "soon", "cap": "lots"})
    errors = {e["loc"]: e["msg"] for e in info.value.errors()}
    assert "invalid duration 'soon'" in errors[("every",)]
    assert "invalid size 'lots'" in errors[("cap",)]
