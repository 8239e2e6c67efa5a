"""dryAPI's native task API (``/api/v1/client/*``): a dialect over the same engine (design.md §6)."""
