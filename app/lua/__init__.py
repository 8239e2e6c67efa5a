"""The gateway's Redis Lua scripts, one ``.lua`` file each, read once per process.

Every script names each key it touches in ``KEYS`` (never builds a key name from ``ARGV`` or
from data), so it runs on Redis Cluster; keys one script touches together share a hash tag
(see ``app.store.Keys``). ``tests/unit/test_lua_scripts.py`` checks both rules.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript


@cache
def source(name: str) -> str:
    """The text of ``app/lua/{name}.lua``."""
    return files(__package__).joinpath(f"{name}.lua").read_text(encoding="utf-8")


def register(redis: aioredis.Redis, name: str) -> AsyncScript:
    """The script as a callable (EVALSHA, loading it on first use)."""
    return redis.register_script(source(name))
