"""The caps on /v1 request values: integers within int64, finite floats, bounded lists and bodies."""

from __future__ import annotations

import pytest

from app.errors import InvalidRequest
from app.openai.bounds import INT64_MAX, INT64_MIN, MAX_ITEMS, MAX_NODES, check_values, finite_number


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"dimensions": 2132100305278346363870778490880}, "dimensions"),
        ({"x": INT64_MAX + 1}, "x"),
        ({"x": INT64_MIN - 1}, "x"),
        ({"x": float("nan")}, "x"),
        ({"x": float("inf")}, "x"),
        ({"x": {"y": [1, 2, {"z": -float("inf")}]}}, "x.y.2.z"),
        ({"extra": [0] * 100_000}, "extra"),
        ({"extra": {str(i): i for i in range(MAX_ITEMS + 1)}}, "extra"),
        ({"a": [[0] * 4000 for _ in range(MAX_NODES // 4000 + 1)]}, "a"),
    ],
)
def test_refused(body: dict[str, object], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        check_values(body)
    assert caught.value.param is not None
    assert caught.value.param == param or caught.value.param.startswith(f"{param}.")  # the body-wide cap names the list
    assert caught.value.status_code == 400


def test_allowed() -> None:
    check_values({"seed": INT64_MAX, "low": INT64_MIN, "t": 0.5, "s": "x" * 10_000, "ok": True, "none": None,
                  "list": list(range(MAX_ITEMS)), "nested": {"a": [{"b": 1.5}]}})


def test_too_many_top_level_fields() -> None:
    # A multipart form decodes to such a flat body: thousands of distinct text fields.
    with pytest.raises(InvalidRequest) as caught:
        check_values({f"f{i}": "x" for i in range(MAX_ITEMS + 1)})
    assert caught.value.code == "too_many_items"


def test_skipped_fields_are_left_to_the_schema() -> None:
    check_values({"input": [[10**30]]}, skip=frozenset({"input"}))


def test_deep_nesting_costs_no_stack() -> None:
    deep: list[object] = []
    node = deep
    for _ in range(50_000):
        child: list[object] = []
        node.append(child)
        node = child
    check_values({"deep": deep})


@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-inf", "Infinity", "abc", ""])
def test_finite_number_refuses(text: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        finite_number(text, "temperature")
    assert caught.value.param == "temperature"


def test_finite_number_parses() -> None:
    assert finite_number("0.25", "temperature") == 0.25
