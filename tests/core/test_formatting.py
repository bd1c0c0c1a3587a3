"""The shared formatting helpers: an audit change as compact text, never a Python dict repr."""

from __future__ import annotations

from core.formatting import change_summary, compact_value


def test_a_change_shows_only_the_keys_that_changed() -> None:
    text = change_summary({"status": "testing", "n": 1}, {"status": "deployed", "n": 1}, "go")
    assert text == "status: testing -> deployed (go)"
    assert change_summary({"tags": ["a"]}, {"tags": ["a", "b"]}) == 'tags: ["a"] -> ["a","b"]'


def test_a_creation_shows_its_fields_and_a_big_one_only_its_detail() -> None:
    assert change_summary(None, {"name": "ci", "role": "admin"}) == "name=ci, role=admin"
    assert change_summary({"name": "ci"}, None, "revoked") == "removed name=ci (revoked)"
    row = {"id": "wd_prod", "config": {"a": 1}, "tags": [], "name": "", "created_at": "2026"}
    row |= {f"k{i}": i for i in range(7)}
    text = "id=wd_prod, k0=0, k1=1, k2=2, k3=3, k4=4, +2 more (deployed)"
    assert change_summary(None, row, "deployed") == text
    assert change_summary(None, None, "just a note") == "just a note"


def test_values_are_plain_compact_and_cut() -> None:
    assert compact_value(True) == "true" and compact_value(None) == "-"
    assert compact_value(0.5) == "0.5" and compact_value({"b": 1, "a": [1]}) == '{"a":[1],"b":1}'
    long = compact_value("x" * 100)
    assert len(long) == 48 and long.endswith("…")
    text = change_summary(None, {"config": {"key": "v" * 200}})
    assert "{'" not in text and len(text) < 60
