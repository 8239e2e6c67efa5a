"""dryapi-gateway keys create --balance, keys topup, keys ledger: run as real subprocesses."""

from __future__ import annotations

import json

import pytest

from tests.cli.test_cli import _run

pytestmark = pytest.mark.process  # starts subprocesses


def test_balance_topup_and_ledger(redis_url: str, redis_prefix: str) -> None:
    env = {"REDIS_URL": redis_url, "DRYAPI_REDIS_PREFIX": f"{redis_prefix}cli-billing:"}
    created = _run("keys", "create", "--name", "payer", "--balance", "2.5", "--json", env=env)
    assert created.returncode == 0, created.stderr
    key_id = json.loads(created.stdout.strip().splitlines()[-1])["id"]
    topped = _run("keys", "topup", key_id, "1.25", "--note", "invoice 7", env=env)
    assert topped.returncode == 0, topped.stderr
    assert f"balance of {key_id}: 3.750000 USD" in topped.stdout
    ledger = _run("keys", "ledger", key_id, "--json", env=env)
    assert ledger.returncode == 0, ledger.stderr
    rows = json.loads(ledger.stdout)
    assert [(r["kind"], r["amount"], r["balance"], r["note"]) for r in rows] == [
        ("topup", 2.5, 2.5, "opening balance"), ("topup", 1.25, 3.75, "invoice 7")]
    text = _run("keys", "ledger", key_id, env=env)
    assert "topup" in text.stdout and "invoice 7" in text.stdout


def test_a_key_without_balance_starts_with_the_signup_bonus(redis_url: str, redis_prefix: str) -> None:
    env = {"REDIS_URL": redis_url, "DRYAPI_REDIS_PREFIX": f"{redis_prefix}cli-bonus:"}
    created = _run("keys", "create", "--name", "new", "--json", env=env)
    key_id = json.loads(created.stdout.strip().splitlines()[-1])["id"]
    topped = _run("keys", "topup", key_id, "1", env=env)
    assert f"balance of {key_id}: 6.000000 USD" in topped.stdout  # routing.yaml's 5.00 bonus + 1
    zero = _run("keys", "create", "--name", "empty", "--balance", "0", "--json", env=env)
    zero_id = json.loads(zero.stdout.strip().splitlines()[-1])["id"]
    assert "balance of " + zero_id + ": 2.000000 USD" in _run("keys", "topup", zero_id, "2", env=env).stdout


def test_bad_amounts_and_unknown_keys_are_refused(redis_url: str, redis_prefix: str) -> None:
    env = {"REDIS_URL": redis_url, "DRYAPI_REDIS_PREFIX": f"{redis_prefix}cli-bad:"}
    unknown = _run("keys", "topup", "key_nope", "1", env=env)
    assert unknown.returncode == 1 and "no key with id key_nope" in unknown.stderr
    for amount in ("-1", "nan", "lots"):
        bad = _run("keys", "topup", "key_nope", amount, env=env)
        assert bad.returncode == 2 and "USD" in bad.stderr, bad.stderr
