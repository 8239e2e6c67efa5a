"""Client webhooks: durable, signed deliveries from a Redis outbox (the seed's Webhooks page)."""

from app.webhooks.outbox import OUTCOMES, USER_AGENT, WebhookOutbox
from app.webhooks.settings import DEFAULT_SCHEDULE, WebhookSettings
from app.webhooks.signature import sign, verify

__all__ = ["DEFAULT_SCHEDULE", "OUTCOMES", "USER_AGENT", "WebhookOutbox", "WebhookSettings", "sign", "verify"]
