"""The dryapi-gateway command, run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from tests.support.servers import free_port

pytestmark = pytest.mark.process  # starts subprocesses

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "app"]


def _run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout
    )


def _routing_files() -> list[Path]:
    found = []
    for path in ROOT.rglob("*.y*ml"):
        if any(part.startswith(".") or part in ("node_modules",) for part in path.relative_to(ROOT).parts):
            continue
        try:
            document = yaml.safe_load(path.read_text())
        except yaml.YAMLError:
            continue
        if isinstance(document, dict) and "surfaces" in document:
            found.append(path)
    return found


def test_every_routing_file_in_the_repo_is_valid() -> None:
    files = _routing_files()
    assert ROOT / "routing.yaml" in files
    for path in files:
        result = _run("routing", "check", str(path))
        assert result.returncode == 0, result.stderr
        assert "valid" in result.stdout


def test_routing_check_names_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("surfaces:\n  chat:\n    modes: x\n    models: {a: {endpoint_id: \"${UNSET_VAR_X}\"}}\n  tv: {}\n")
    result = _run("routing", "check", str(bad))
    assert result.returncode == 1
    assert f"{bad}: invalid routing (3 problem(s))" in result.stderr
    for path in ("surfaces.chat.modes", "surfaces.chat.models.a.endpoint_id", "surfaces.tv"):
        assert path in result.stderr


def test_keys_create_list_revoke(redis_url: str, redis_prefix: str) -> None:
    env = {"REDIS_URL": redis_url, "DRYAPI_REDIS_PREFIX": f"{redis_prefix}cli:"}
    created = _run("keys", "create", "--name", "ci", "--tier", "premium", "--admin", "--json", env=env)
    assert created.returncode == 0, created.stderr
    issued = json.loads(created.stdout.strip().splitlines()[-1])
    assert set(issued) == {"id", "key", "name", "tier", "admin", "webhook_secret", "webhook_url"}
    assert issued["tier"] == "premium" and issued["admin"] is True and issued["key"].startswith("dry-")
    listed = _run("keys", "list", "--json", env=env)
    rows = json.loads(listed.stdout)
    assert [r["id"] for r in rows] == [issued["id"]]
    assert issued["key"] not in listed.stdout and issued["webhook_secret"] not in listed.stdout
    assert _run("keys", "revoke", issued["id"], env=env).returncode == 0
    assert _run("keys", "revoke", issued["id"], env=env).returncode == 1


def test_keys_create_with_an_account_webhook(redis_url: str, redis_prefix: str) -> None:
    env = {"REDIS_URL": redis_url, "DRYAPI_REDIS_PREFIX": f"{redis_prefix}cli-hook:",
           "DRYAPI_WEBHOOK_ALLOWLIST": "127.0.0.1"}
    created = _run("keys", "create", "--name", "hooked", "--webhook-url", "http://127.0.0.1:9/h", "--json", env=env)
    assert created.returncode == 0, created.stderr
    issued = json.loads(created.stdout.strip().splitlines()[-1])
    assert issued["webhook_url"] == "http://127.0.0.1:9/h"
    listed = json.loads(_run("keys", "list", "--json", env=env).stdout)
    assert [r["webhook_url"] for r in listed if r["id"] == issued["id"]] == ["http://127.0.0.1:9/h"]
    refused = _run("keys", "create", "--name", "bad", "--webhook-url", "https://100.64.0.1/h", env=env)
    assert refused.returncode == 1
    assert "webhook_url" in refused.stderr and "key:" not in refused.stdout


def test_keys_refuse_the_memory_backend() -> None:
    result = _run("keys", "list", env={"REDIS_URL": "memory://"})
    assert result.returncode == 1
    assert "REDIS_URL" in result.stderr


def test_serve_refuses_unsafe_setups() -> None:
    many = _run("serve", "--workers", "2", env={"REDIS_URL": "memory://"})
    assert many.returncode == 1 and "memory://" in many.stderr
    exposed = _run("serve", "--host", "0.0.0.0", env={"REDIS_URL": "memory://", "DRYAPI_SIGNING_SECRET": ""})
    assert exposed.returncode == 1 and "DRYAPI_SIGNING_SECRET" in exposed.stderr
    typo = _run("serve", env={"REDIS_URL": "memory://", "DRYAPI_WS_COMPRESSION": "maybe"})
    assert typo.returncode == 1 and "DRYAPI_WS_COMPRESSION must be on or off" in typo.stderr


@contextmanager
def _process(*args: str, env: dict[str, str], ready_url: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([*CLI, *args], cwd=ROOT, env={**os.environ, **env}, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (proc.stderr.read() if proc.stderr else b"").decode()
            try:
                if httpx.get(ready_url, timeout=1).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "process did not become ready"
            time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_emulator_command_serves_a_handler() -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}/v2/emb"
    with _process(
        "emulator", "--port", str(port), "--endpoint", "emb=tests.gateway.workers:embeddings",
        env={"RUNPOD_API_KEY": ""}, ready_url=f"{base}/health",
    ):
        job = {"input": {"openai_route": "/v1/embeddings", "openai_input": {"model": "m", "input": "hi"}}}
        result = httpx.post(f"{base}/runsync", json=job, timeout=30).json()
        assert result["status"] == "COMPLETED"
        assert result["output"][0]["data"][0]["object"] == "embedding"


LOCAL_ROUTING = """
surfaces:
  chat:
    default_model: local-chat
    models: {local-chat: {local_endpoint: chat}}
  embeddings:
    default_model: local-embed
    models: {local-embed: {local_endpoint: emb}}
local:
  endpoints:
    chat: {handler: "tests.gateway.workers:chat"}
    emb: {handler: "tests.gateway.workers:embeddings", concurrency: 2}
"""


def test_serve_local_runs_handlers_in_process(tmp_path: Path) -> None:
    routing = tmp_path / "routing.yaml"
    routing.write_text(LOCAL_ROUTING)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with _process(
        "serve", "--local", "--port", str(port), "--routing", str(routing),
        env={"REDIS_URL": "memory://"}, ready_url=f"{url}/readyz",
    ):
        ready = httpx.get(f"{url}/readyz").json()
        assert ready["open_mode"] is True and ready["checks"]["upstream"] == "local"
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused-in-open-mode", max_retries=0)
        reply = client.chat.completions.create(model="local-chat", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content == "echo: hi"
        vectors = client.embeddings.create(model="local-embed", input=["a", "b"])
        assert len(vectors.data) == 2


@pytest.mark.parametrize("args", [["--help"], ["keys", "--help"], ["routing", "check", "--help"]])
def test_help(args: list[str]) -> None:
    assert _run(*args).returncode == 0


def test_serve_on_memory_without_the_local_extra_says_what_to_install(tmp_path: Path) -> None:
    # A production install has no fakeredis: hide it from the child process.
    (tmp_path / "sitecustomize.py").write_text(
        "import sys\n"
        "class _Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'fakeredis' or name.startswith('fakeredis.'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, _Hide())\n"
    )
    env = {"REDIS_URL": "memory://", "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}", "DRYAPI_ROUTING": "routing.yaml"}
    result = _run("serve", "--port", str(free_port()), env=env, timeout=30)
    assert result.returncode == 1
    assert "local" in result.stderr and "REDIS_URL" in result.stderr
