"""OAuth for hosted MCP connectors, as the seed's MCP page sets it up: client id ``dryapi-mcp``,
client secret = the API key (the MCP authorization spec: RFC 9728 resource metadata, RFC 8414
server metadata, the authorization-code flow with PKCE S256, and client credentials).

The gateway is its own authorization server. ``/oauth/authorize`` needs no login: it only binds
a short-lived code to the client's PKCE challenge and redirect URI; the API key, sent as the
client secret to ``/oauth/token``, is what proves the caller, and the access token it gets back
is that key, so ``/mcp`` checks it like any bearer key. Errors here use OAuth's own shape
(RFC 6749 §5.2), which OAuth clients parse, not the API's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from typing import Any
from urllib.parse import urlencode, urlsplit

import msgspec
from litestar import Request, Response, get, post
from litestar.response import Redirect

from app.services import Services

CLIENT_ID = "dryapi-mcp"
CODE_TTL_S = 600
_MAX_FIELD = 2048


def _error(status: int, error: str, description: str) -> Response[bytes]:
    body = msgspec.json.encode({"error": error, "error_description": description})
    return Response(content=body, status_code=status, media_type="application/json",
                    headers={"cache-control": "no-store"})


def _base(services: Services) -> str:
    return services.settings.public_url.rstrip("/")


@get(["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"],
     include_in_schema=False)
async def protected_resource(request: Request[Any, Any, Any]) -> dict[str, Any]:
    base = _base(request.app.state.services)
    return {"resource": f"{base}/mcp", "authorization_servers": [base], "bearer_methods_supported": ["header"]}


@get("/.well-known/oauth-authorization-server", include_in_schema=False)
async def authorization_server(request: Request[Any, Any, Any]) -> dict[str, Any]:
    base = _base(request.app.state.services)
    return {
        "issuer": base,
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
    }


def _redirect_ok(uri: str) -> bool:
    parts = urlsplit(uri)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    return bool(parts.netloc) and (parts.scheme == "https" or (parts.scheme == "http" and loopback))


@get("/oauth/authorize", include_in_schema=False)
async def authorize(request: Request[Any, Any, Any]) -> Response[Any]:
    services: Services = request.app.state.services
    q = {k: v[:_MAX_FIELD] for k, v in request.query_params.items()}
    redirect_uri = q.get("redirect_uri", "")
    if q.get("client_id") != CLIENT_ID:
        return _error(400, "invalid_client", f"client_id must be {CLIENT_ID}")
    if not _redirect_ok(redirect_uri):
        return _error(400, "invalid_request", "redirect_uri must be an https URL (http only on loopback)")
    if q.get("response_type") != "code":
        return _error(400, "unsupported_response_type", "response_type must be code")
    if not q.get("code_challenge") or q.get("code_challenge_method", "S256") != "S256":
        return _error(400, "invalid_request", "PKCE is required: code_challenge with code_challenge_method S256")
    code = secrets.token_urlsafe(32)
    grant = {"challenge": q["code_challenge"], "redirect_uri": redirect_uri}
    await services.redis.set(services.keys.oauth_code(code), msgspec.json.encode(grant), ex=CODE_TTL_S)
    back = {"code": code} | ({"state": q["state"]} if "state" in q else {})
    joiner = "&" if urlsplit(redirect_uri).query else "?"
    return Redirect(f"{redirect_uri}{joiner}{urlencode(back)}", status_code=302)


def _client(request: Request[Any, Any, Any], form: dict[str, str]) -> tuple[str, str]:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            return client_id, secret
        except (binascii.Error, UnicodeDecodeError):
            return "", ""
    return form.get("client_id", ""), form.get("client_secret", "")


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@post("/oauth/token", include_in_schema=False, status_code=200)
async def token(request: Request[Any, Any, Any]) -> Response[Any]:
    services: Services = request.app.state.services
    form = {k: str(v)[:_MAX_FIELD] for k, v in (await request.form()).items() if isinstance(v, str)}
    client_id, secret = _client(request, form)
    if client_id != CLIENT_ID or not secret or await services.key_store.lookup(secret) is None:
        return _error(401, "invalid_client", f"client_id {CLIENT_ID} with an API key as client_secret")
    grant = form.get("grant_type")
    if grant == "authorization_code":
        raw = await services.redis.getdel(services.keys.oauth_code(form.get("code", "")))
        if raw is None:
            return _error(400, "invalid_grant", "the code is unknown, used or expired")
        bound = msgspec.json.decode(raw)
        verifier = form.get("code_verifier", "")
        if not verifier or not hmac.compare_digest(_challenge(verifier), str(bound["challenge"])):
            return _error(400, "invalid_grant", "code_verifier does not match the code_challenge")
        if form.get("redirect_uri", bound["redirect_uri"]) != bound["redirect_uri"]:
            return _error(400, "invalid_grant", "redirect_uri differs from the authorization request's")
    elif grant != "client_credentials":
        return _error(400, "unsupported_grant_type", "grant_type must be authorization_code or client_credentials")
    body = msgspec.json.encode({"access_token": secret, "token_type": "Bearer", "scope": "mcp"})
    return Response(content=body, media_type="application/json", headers={"cache-control": "no-store"})


OAUTH_ROUTES: list[Any] = [protected_resource, authorization_server, authorize, token]
