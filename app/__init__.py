"""dryAPI gateway: OpenAI-compatible API over RunPod serverless workers."""
