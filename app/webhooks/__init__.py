"""Webhooks: RunPod completion callbacks in, signed client deliveries out."""
