"""The OpenAPI document's top-level tags, named and described as the reference groups its routes."""

from __future__ import annotations

from litestar.openapi.spec import Tag

TAG_OPENAI = "OpenAI-Compatible"
TAG_JOBS = "Jobs"
TAG_RUNPOD = "RunPod Jobs"
TAG_WEBHOOKS = "Webhooks"
TAG_MODELS = "Models"
TAG_FILES = "Files"
TAG_ADMIN = "Admin"
TAG_HEALTH = "Health"

TAGS = [
    Tag(name=TAG_OPENAI, description="OpenAI/OpenRouter-style inference enqueue endpoints."),
    Tag(name=TAG_JOBS, description="Provider-agnostic async status, download, and websocket streaming routes."),
    Tag(name=TAG_RUNPOD, description="RunPod's serverless queue API proxied for admin keys."),
    Tag(name=TAG_WEBHOOKS, description="Signed job-event deliveries: account settings, tests, RunPod callbacks."),
    Tag(name=TAG_MODELS, description="The models each surface serves."),
    Tag(name=TAG_FILES, description="Signed links to stored media (no API key: the signature is the proof)."),
    Tag(name=TAG_ADMIN, description="Operator routes for admin keys: routing, usage, webhook breakers."),
    Tag(name=TAG_HEALTH, description="Liveness, readiness and metrics for orchestrators."),
]

# The bearer scheme every authenticated operation names in its ``security``.
BEARER_AUTH = "BearerAuth"
