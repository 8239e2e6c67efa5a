"""Per-key admission: a cap on open sockets, and a bounded number of setups at a time."""

from __future__ import annotations

import asyncio

from app.admission import KeyAdmission, tenant_of


def test_each_key_has_its_own_cap_and_forgets_closed_keys() -> None:
    admission = KeyAdmission(max_open=2)
    a, b = tenant_of("key-a"), tenant_of("key-b")
    assert admission.try_open(a) and admission.try_open(a)
    assert not admission.try_open(a)
    assert admission.try_open(b)
    admission.close(a)
    assert admission.try_open(a)
    for tenant in (a, a, b):
        admission.close(tenant)
    assert admission.open_count(a) == admission.open_count(b) == 0
    assert not admission._shares  # nothing kept for keys without sockets


async def test_one_key_runs_at_most_its_share_of_setups_at_once() -> None:
    admission = KeyAdmission(max_open=100, setup_share=3)
    a, b = tenant_of("key-a"), tenant_of("key-b")
    running: dict[bytes, int] = {a: 0, b: 0}
    peak: dict[bytes, int] = {a: 0, b: 0}

    async def setup(tenant: bytes) -> None:
        assert admission.try_open(tenant)
        try:
            async with admission.setup(tenant):
                running[tenant] += 1
                peak[tenant] = max(peak[tenant], running[tenant])
                await asyncio.sleep(0.01)
                running[tenant] -= 1
        finally:
            admission.close(tenant)

    await asyncio.gather(*(setup(a) for _ in range(30)), setup(b))
    assert peak == {a: 3, b: 1}
