"""RunPod worker for text/image/audio-to-video (LTX-Video class, diffusers)."""
