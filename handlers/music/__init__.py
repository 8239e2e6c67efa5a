"""Text-to-music RunPod worker (media dialect, task txt2music)."""
