"""Every Lua script names each key it touches in KEYS (Redis Cluster's rule) and ships as a file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app import lua

APP = Path(__file__).resolve().parents[2] / "app"
SCRIPTS = sorted(path.stem for path in (APP / "lua").glob("*.lua"))
# Commands the scripts use, each taking its one key as the first argument (TIME takes none).
KEYED = {"DECRBY", "DEL", "EXISTS", "EXPIRE", "GET", "HDEL", "HGET", "HINCRBY", "HMGET", "HSET", "INCR", "INCRBY",
         "SADD", "SCARD", "SET", "SMEMBERS", "SREM", "XADD", "ZADD", "ZRANGE", "ZRANGEBYSCORE", "ZREM", "ZSCORE"}
CALL = re.compile(r"redis\.call\(\s*'([A-Z]+)'\s*(?:,\s*([^,)]+))?")
FROM_KEYS = re.compile(r"^KEYS\[[^\]]+\]$")


def _key_names(text: str) -> set[str]:
    """Local names bound only to KEYS entries (``local dk, bk = KEYS[3 * i], KEYS[3 * i + 1]``)."""
    names: set[str] = set()
    for match in re.finditer(r"local\s+([\w\s,]+?)\s*=\s*([^\n]+)", text):
        targets = [t.strip() for t in match[1].split(",")]
        values = [v.strip() for v in match[2].split(",")]
        if len(values) == len(targets) and all(FROM_KEYS.match(v) for v in values):
            names.update(targets)
    return names


def test_there_are_scripts() -> None:
    assert {"claim_due_jobs", "rate_windows", "webhook_claim", "webhook_finish"} <= set(SCRIPTS)


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_key_a_script_touches_comes_from_keys(name: str) -> None:
    text = lua.source(name)  # loaded as package data, as an installed gateway loads it
    names = _key_names(text)
    calls = CALL.findall(text)
    assert calls, name
    for command, first in calls:
        if command == "TIME":
            continue
        assert command in KEYED, f"{name}: review {command}'s key arguments and add it to KEYED"
        key = first.strip()
        assert FROM_KEYS.match(key) or key in names, f"{name}: {command} on {key!r}, not a KEYS entry"
        assert "ARGV" not in key and ".." not in key, f"{name}: a key name built in the script"


def test_scripts_live_in_lua_files_only() -> None:
    for path in APP.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "redis.call(" not in text, f"{path}: Lua inline; put it in app/lua/"
        if path.parent.name != "lua":
            assert "register_script(" not in text, f"{path}: register through app.lua.register"
