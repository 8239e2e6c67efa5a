"""Embeddings worker: sentence-transformers behind the worker-infinity-embedding dialect.

See handlers/README.md for the input/output contract and the environment variables.
"""
