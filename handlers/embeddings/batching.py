"""Group a request's inputs into forward passes.

Inputs are sorted longest first so each batch pads to similar lengths, and a batch is
capped both by count and by padded tokens (count x its longest input): a few 8k-token
inputs to BGE-M3 must not share a batch size meant for short sentences.
"""

from __future__ import annotations


def plan_batches(lengths: list[int], batch_size: int, batch_tokens: int) -> list[list[int]]:
    """Indices of ``lengths`` grouped into batches; every input lands in exactly one."""
    order = sorted(range(len(lengths)), key=lambda index: -lengths[index])
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for index in order:
        if current and (len(current) >= batch_size or longest * (len(current) + 1) > batch_tokens):
            batches.append(current)
            current = []
        if not current:
            longest = lengths[index]  # sorted descending: the first input is the longest
        current.append(index)
    if current:
        batches.append(current)
    return batches
