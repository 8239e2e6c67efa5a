"""RunPod serverless workers bundled with the dryAPI gateway (one package per surface)."""
