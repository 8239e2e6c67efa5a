"""Embeddings worker: sentence-transformers behind the worker-infinity-embedding dialect.

See CONTRACT.md for the input/output contract and the environment variables.
"""
