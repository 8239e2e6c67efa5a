"""OAuth for hosted MCP connectors (client id dryapi-mcp, client secret = the API key): the
metadata documents, the authorization-code flow with PKCE, client credentials, and the token
working on /mcp through the official MCP client."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.gateway.conftest import Gateway
from tests.mcp.conftest import mcp_session

REDIRECT = "https://connector.example/callback"


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def test_a_401_on_mcp_points_to_the_metadata(mcp_gateway: Gateway) -> None:
    response = httpx.post(f"{mcp_gateway.url}/mcp", json={})
    assert response.status_code == 401
    assert "/.well-known/oauth-protected-resource" in response.headers["www-authenticate"]
    resource = httpx.get(f"{mcp_gateway.url}/.well-known/oauth-protected-resource").json()
    assert resource["resource"].endswith("/mcp")
    (server,) = resource["authorization_servers"]
    meta = httpx.get(f"{server}/.well-known/oauth-authorization-server").json()
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["token_endpoint"].endswith("/oauth/token")


def test_the_authorization_code_flow_gives_a_token_that_works_on_mcp(mcp_gateway: Gateway) -> None:
    key = mcp_gateway.issue_key("oauth-connector").key
    verifier, challenge = _pkce()
    authorize = httpx.get(f"{mcp_gateway.url}/oauth/authorize", params={
        "response_type": "code", "client_id": "dryapi-mcp", "redirect_uri": REDIRECT, "state": "s1",
        "code_challenge": challenge, "code_challenge_method": "S256"})
    assert authorize.status_code == 302
    location = urlsplit(authorize.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == ["s1"]
    form = {"grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": REDIRECT,
            "code_verifier": verifier, "client_id": "dryapi-mcp", "client_secret": key}
    issued = httpx.post(f"{mcp_gateway.url}/oauth/token", data=form)
    assert issued.status_code == 200, issued.text
    token = issued.json()["access_token"]
    assert issued.json()["token_type"] == "Bearer"
    again = httpx.post(f"{mcp_gateway.url}/oauth/token", data=form)  # a code works once
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"

    async def tools() -> list[str]:
        async with mcp_session(mcp_gateway, token) as session:
            return [tool.name for tool in (await session.list_tools()).tools]

    assert "text_to_image" in asyncio.run(tools())


def test_wrong_verifier_secret_or_client_are_refused(mcp_gateway: Gateway) -> None:
    key = mcp_gateway.issue_key("oauth-refused").key
    verifier, challenge = _pkce()
    params = {"response_type": "code", "client_id": "dryapi-mcp", "redirect_uri": REDIRECT,
              "code_challenge": challenge, "code_challenge_method": "S256"}
    code = parse_qs(urlsplit(httpx.get(f"{mcp_gateway.url}/oauth/authorize", params=params)
                             .headers["location"]).query)["code"][0]
    base = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": "dryapi-mcp"}
    bad_secret = httpx.post(f"{mcp_gateway.url}/oauth/token", data=base | {"client_secret": "nope",
                                                                          "code_verifier": verifier})
    assert bad_secret.status_code == 401 and bad_secret.json()["error"] == "invalid_client"
    bad_verifier = httpx.post(f"{mcp_gateway.url}/oauth/token", data=base | {"client_secret": key,
                                                                            "code_verifier": "x" * 50})
    assert bad_verifier.status_code == 400 and bad_verifier.json()["error"] == "invalid_grant"
    other_client = httpx.get(f"{mcp_gateway.url}/oauth/authorize", params=params | {"client_id": "someone"})
    assert other_client.status_code == 400 and other_client.json()["error"] == "invalid_client"
    no_pkce = httpx.get(f"{mcp_gateway.url}/oauth/authorize", params={**params, "code_challenge": ""})
    assert no_pkce.status_code == 400
    plain_http = httpx.get(f"{mcp_gateway.url}/oauth/authorize", params=params | {"redirect_uri": "http://x.example/"})
    assert plain_http.status_code == 400


def test_client_credentials_with_basic_auth(mcp_gateway: Gateway) -> None:
    key = mcp_gateway.issue_key("oauth-basic").key
    response = httpx.post(f"{mcp_gateway.url}/oauth/token", data={"grant_type": "client_credentials"},
                          auth=("dryapi-mcp", key))
    assert response.status_code == 200 and response.json()["access_token"] == key
