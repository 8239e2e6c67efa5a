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
TAG_NATIVE_GENERATION = "Generation"
TAG_NATIVE_TRANSFORMATION = "Transformation"
TAG_NATIVE_ANALYSIS = "Analysis"
TAG_NATIVE_UTILITIES = "Utilities"

TAGS = [
    Tag(name=TAG_OPENAI, description="OpenAI/OpenRouter-style inference enqueue endpoints."),
    Tag(name=TAG_JOBS, description="Provider-agnostic async status, download, and websocket streaming routes."),
    Tag(name=TAG_RUNPOD, description="RunPod's serverless queue API proxied for admin keys."),
    Tag(name=TAG_WEBHOOKS, description="Signed job-event deliveries: account settings, tests, RunPod callbacks."),
    Tag(name=TAG_MODELS, description="The models each surface serves."),
    Tag(name=TAG_FILES, description="Signed links to stored media (no API key: the signature is the proof)."),
    Tag(name=TAG_ADMIN, description="Operator routes for admin keys: routing, usage, webhook breakers."),
    Tag(name=TAG_HEALTH, description="Liveness, readiness and metrics for orchestrators."),
    Tag(name=TAG_NATIVE_GENERATION, description="Native task API: images, speech, music and video from text."),
    Tag(name=TAG_NATIVE_TRANSFORMATION, description="Native task API: image editing, background removal, upscaling."),
    Tag(name=TAG_NATIVE_ANALYSIS, description="Native task API: OCR, transcription of files and links, embeddings."),
    Tag(name=TAG_NATIVE_UTILITIES, description="Native task API: request status and the models catalogue."),
]

# The bearer scheme every authenticated operation names in its ``security``.
BEARER_AUTH = "BearerAuth"
