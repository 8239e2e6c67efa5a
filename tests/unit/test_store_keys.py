"""app/store.py ``Keys``: one named method per key, distinct names, hash tags where scripts need them."""

from __future__ import annotations

import inspect
from pathlib import Path

from redis.crc import key_slot

from app.store import Keys

KEYS = Keys("p:")


def _names() -> dict[str, str]:
    """Every key and channel name Keys gives, by member (methods called with sample arguments)."""
    names: dict[str, str] = {}
    for member, value in inspect.getmembers(Keys):
        if member.startswith("_"):
            continue
        if isinstance(value, property):
            names[member] = getattr(KEYS, member)
        elif inspect.isfunction(value):
            params = list(inspect.signature(value).parameters)[1:]
            samples = {"period": 60, "status": "IN_PROGRESS"}
            names[member] = value(KEYS, *(samples.get(p, f"<{p}>") for p in params))
    return names


def test_no_ad_hoc_names_and_every_name_is_prefixed_and_distinct() -> None:
    assert not hasattr(Keys, "custom")
    names = _names()
    assert all(name.startswith("p:") for name in names.values()), names
    assert len(set(names.values())) == len(names), names


def test_keys_one_script_touches_share_a_hash_slot() -> None:
    def slot(*names: str) -> set[int]:
        return {key_slot(name.encode()) for name in names}

    assert len(slot(KEYS.fast_lane, KEYS.sweep_lane)) == 1
    assert len(slot(KEYS.rate_window("k1", "all", 60), KEYS.rate_window("k1", "chat", 86400))) == 1
    webhook = (KEYS.webhook_due, KEYS.webhook_inflight, KEYS.webhook_delivery("d1"), KEYS.webhook_breaker("k"),
               KEYS.webhook_held("k"), KEYS.webhook_pending("k"))
    assert len(slot(*webhook)) == 1


def test_no_module_spells_a_key_name_itself() -> None:
    app = Path(__file__).resolve().parents[2] / "app"
    for path in app.rglob("*.py"):
        if path.name == "store.py":
            continue
        text = path.read_text(encoding="utf-8")
        assert ".prefix}" not in text and "keys.prefix" not in text, path
