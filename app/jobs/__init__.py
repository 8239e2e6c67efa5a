"""RunPod jobs as the gateway tracks them: records, enqueueing, and waiting for results."""
