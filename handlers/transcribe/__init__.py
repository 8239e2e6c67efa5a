"""Transcribe worker: faster-whisper in the worker-faster_whisper dialect (see handlers/README.md)."""
