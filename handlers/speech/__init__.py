"""Text-to-speech worker (media dialect): Kokoro presets; Chatterbox and Qwen3-TTS declared."""
