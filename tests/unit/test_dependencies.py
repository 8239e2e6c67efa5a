"""pyproject.toml declares what the gateway imports, and the embedded store only where it is used."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# Distribution name -> import name, where they differ.
IMPORT_NAMES = {"pyyaml": "yaml", "prometheus-client": "prometheus_client"}
# Used without an import of ours: uvicorn loads them itself (event loop, HTTP parser), and
# its sans-I/O WebSocket protocol (app/ws_protocol.py's base) imports websockets.
IMPLICIT = {"uvloop", "httptools", "websockets"}


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower()


def _imported_modules() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "app").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


def test_every_base_dependency_is_used() -> None:
    imported = _imported_modules()
    for requirement in PROJECT["dependencies"]:
        name = _name(requirement)
        if name in IMPLICIT:
            continue
        assert IMPORT_NAMES.get(name, name.replace("-", "_")) in imported, f"{name} is declared but never imported"


def test_embedded_store_is_an_extra_that_dev_includes() -> None:
    base = {_name(r) for r in PROJECT["dependencies"]}
    assert "fakeredis" not in base and "lupa" not in base
    extras = PROJECT["optional-dependencies"]
    assert any(r.startswith("fakeredis[lua]") for r in extras["local"])
    assert "dryapi-gateway[local]" in extras["dev"]  # the CI installs .[dev,handlers]
    assert ".[local,handlers]' && .venv/bin/dryapi-gateway serve --local" in (ROOT / "README.md").read_text()


def test_uvicorn_bound_has_the_protocol_the_gateway_extends() -> None:
    # 0.35 added websockets_sansio_impl; 0.36 is the first to accept an import string for `ws`
    # (app/serving.py passes "app.ws_protocol:GatewayWebSocketProtocol"): checked by serving on both.
    [uvicorn] = [r for r in PROJECT["dependencies"] if _name(r) == "uvicorn"]
    assert uvicorn == "uvicorn>=0.36"
