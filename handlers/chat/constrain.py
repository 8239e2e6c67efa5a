"""JSON-constrained decoding for the transformers engine, through lm-format-enforcer.

At each step only tokens that keep the output a valid prefix of the schema (or of any JSON
object) may be chosen, and the end of turn only once the JSON is complete, so a finished
choice always parses and validates. The tokenizer's character table is built once per engine
(a pass over the vocabulary, seconds for 150k tokens) on the first constrained request.
vLLM has its own structured outputs (xgrammar) and does not use this module.
"""

from __future__ import annotations

import threading
from typing import Any

from handlers.chat.engine import Constraint
from handlers.common.errors import InvalidInput


class JsonConstrainer:
    def __init__(self, tokenizer: Any, max_whitespace: int = 8) -> None:
        self._tokenizer = tokenizer
        # Whitespace between JSON tokens in a row: room for indentation, not for a model that
        # would pad forever (CHAT_JSON_MAX_WHITESPACE).
        self.max_whitespace = max_whitespace
        self._data: Any = None
        self._lock = threading.Lock()

    def check(self, constraint: Constraint, param: str) -> None:
        """Refuse, before any work, a schema the enforcer cannot follow."""
        self._parser(constraint, param)

    def prefix_fn(self, constraint: Constraint, param: str) -> Any:
        """A ``prefix_allowed_tokens_fn`` for ``model.generate`` (one per generation: it keeps state).

        The library's own transformers integration imports paths transformers 5 removed, so
        the character table and the callback are built here on its tokenizer-neutral core.
        """
        from lmformatenforcer import TokenEnforcer

        with self._lock:
            if self._data is None:
                self._data = _tokenizer_data(self._tokenizer)
        parser = self._parser(constraint, param)
        enforcer = TokenEnforcer(self._data, parser)
        # The enforcer replaces the parser's config with one carrying the tokenizer's alphabet;
        # the whitespace limit is set on that one.
        parser.config.max_consecutive_whitespaces = self.max_whitespace

        def allowed(batch_id: int, sent: Any) -> list[int]:
            return list(enforcer.get_allowed_tokens(sent.tolist()).allowed_tokens)

        return allowed

    @staticmethod
    def _parser(constraint: Constraint, param: str) -> Any:
        from lmformatenforcer import JsonSchemaParser

        try:
            return JsonSchemaParser(constraint.schema or {"type": "object"})
        except Exception as exc:  # its schema model rejects what it cannot enforce
            raise InvalidInput(
                param,
                f"this schema cannot be enforced on this engine ({type(exc).__name__})",
                code="unsupported_schema",
            ) from None


def _tokenizer_data(tokenizer: Any) -> Any:
    """Each regular token's text, and whether it starts a word (decoding it after another
    token adds a leading space, as SentencePiece tokenizers do)."""
    from lmformatenforcer import TokenEnforcerTokenizerData

    special = set(tokenizer.all_special_ids)
    anchor = tokenizer.encode("0", add_special_tokens=False)[-1]
    regular: list[tuple[int, str, bool]] = []
    for token in range(len(tokenizer)):
        if token in special:
            continue
        after_anchor = tokenizer.decode([anchor, token])[1:]
        alone = tokenizer.decode([token])
        # Left out: byte pieces of a multi-byte character (they decode to U+FFFD alone, so the
        # enforcer cannot tell what they add) and control characters, which JSON never has
        # raw. Whole-character tokens still write any text, escapes included.
        if "\ufffd" in alone or any(ord(c) < 32 and c not in "\t\n\r" for c in alone):
            continue
        regular.append((token, after_anchor, len(after_anchor) > len(alone)))

    def decode(tokens: list[int]) -> str:
        return str(tokenizer.decode(tokens)).rstrip("\ufffd")  # an unfinished UTF-8 sequence is not text yet

    return TokenEnforcerTokenizerData(regular, decode, tokenizer.eos_token_id, False, len(tokenizer))
