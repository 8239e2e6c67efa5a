"""The chat worker: OpenAI chat and text completions on vLLM or transformers."""
