"""The transformers engine: CPU and small GPUs, one sequence at a time.

``model.generate`` runs in a thread and pushes words through a streamer into the event
loop, so the handler streams while the loop stays free. A lock serialises generations:
the global torch RNG (what ``seed`` sets) and the CPU cores are shared by every job.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import re
import threading
import time
from collections.abc import AsyncGenerator
from typing import Any

import torch
from transformers import (
    AsyncTextIteratorStreamer,
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    StoppingCriteria,
    StoppingCriteriaList,
)

from handlers.chat.engine import ChatSettings, Delta, EngineKind, FinishReason, SamplingOptions, check_max_model_len
from handlers.chat.stops import StopMatcher
from handlers.common.errors import HandlerError, InvalidInput

log = logging.getLogger("dryapi.handlers.chat")

# Tokenizers without a real limit report a huge model_max_length; never trust that.
_FALLBACK_CONTEXT = 2048


class _CountingStreamer(AsyncTextIteratorStreamer):
    """The library's async streamer, also counting generated tokens for ``usage``."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self.generated = 0
        self.last_token: int | None = None
        self.ended = False

    def put(self, value: torch.Tensor) -> None:
        if not (self.skip_prompt and self.next_tokens_are_prompt):
            ids = value.reshape(-1).tolist()
            self.generated += len(ids)
            if ids:
                self.last_token = int(ids[-1])
        super().put(value)  # type: ignore[no-untyped-call]

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        self.ended = self.ended or stream_end
        self.push(text)
        if stream_end:
            self.push(None)

    def push(self, item: str | BaseException | None) -> None:
        # A closed loop means the consumer went away: there is no one left to tell.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.text_queue.put_nowait, item)


class _StopWhenSet(StoppingCriteria):
    """Ends generation at the next token once the consumer has seen enough (or left)."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        done = torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool)
        return done.to(input_ids.device)  # type: ignore[return-value]


class TransformersEngine:
    kind: EngineKind = "transformers"

    def __init__(self, tokenizer: PreTrainedTokenizerBase, model: PreTrainedModel, max_model_len: int) -> None:
        self.tokenizer = tokenizer
        self.model = model
        self.max_model_len = max_model_len
        self.device = next(model.parameters()).device
        base: GenerationConfig = copy.deepcopy(model.generation_config)
        eos = base.eos_token_id if base.eos_token_id is not None else tokenizer.eos_token_id
        self.eos_ids: set[int] = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        base.eos_token_id = sorted(self.eos_ids) or None
        if base.pad_token_id is None:
            base.pad_token_id = (
                tokenizer.pad_token_id
                if tokenizer.pad_token_id is not None
                else (min(self.eos_ids) if self.eos_ids else 0)
            )
        self._base = base
        # Like `vllm serve`: the model's own sampling defaults when it ships them, else OpenAI's.
        sampled = bool(base.do_sample)
        self._default_temperature = float(base.temperature or 1.0) if sampled else 1.0
        self._default_top_p = float(base.top_p or 1.0) if sampled else 1.0
        self._default_top_k = int(base.top_k or 0) if sampled else 0
        self._lock = threading.Lock()

    @classmethod
    def build(cls, settings: ChatSettings) -> TransformersEngine:
        """Load tokenizer and weights (blocking)."""
        started = time.monotonic()
        path = settings.model_path()
        config = AutoConfig.from_pretrained(path, trust_remote_code=settings.trust_remote_code)
        check_max_model_len(settings, config)
        cuda = torch.cuda.is_available()
        dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if cuda else torch.float32
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=settings.trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, trust_remote_code=settings.trust_remote_code)
        model.to("cuda" if cuda else "cpu").eval()  # type: ignore[arg-type]
        limit = settings.max_model_len or getattr(model.config, "max_position_embeddings", None)
        if not limit:
            limit = tokenizer.model_max_length if tokenizer.model_max_length < 10**7 else _FALLBACK_CONTEXT
        log.info(
            "chat engine loaded: transformers, %s on %s, context %d, %.1fs",
            settings.model,
            "cuda" if cuda else "cpu",
            limit,
            time.monotonic() - started,
        )
        return cls(tokenizer, model, int(limit))

    def chat_prompt_ids(self, messages: list[dict[str, Any]]) -> list[int]:
        return chat_template_ids(self.tokenizer, messages)

    def text_prompt_ids(self, prompt: str) -> list[int]:
        return list(self.tokenizer(prompt)["input_ids"])

    async def generate(self, prompt_ids: list[int], options: SamplingOptions) -> AsyncGenerator[Delta, None]:
        # Choices run one after another: the streamer follows a single sequence.
        for index in range(options.n):
            seed = None if options.seed is None else options.seed + index
            async with contextlib.aclosing(self._one(prompt_ids, options, index, seed)) as deltas:
                async for delta in deltas:
                    yield delta

    async def _one(
        self, prompt_ids: list[int], options: SamplingOptions, index: int, seed: int | None
    ) -> AsyncGenerator[Delta, None]:
        streamer = _CountingStreamer(self.tokenizer)
        stop_event = threading.Event()
        matcher = StopMatcher(options.stop)
        thread = threading.Thread(
            target=self._run,
            args=(streamer, prompt_ids, self._config(options), seed, stop_event),
            name="chat-generate",
            daemon=True,
        )
        thread.start()
        try:
            while (item := await streamer.text_queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise HandlerError(f"generation failed ({type(item).__name__})", code="generation_failed") from item
                text = matcher.feed(item)
                if matcher.stopped:
                    yield Delta(index, text, "stop", streamer.generated)
                    return
                if text:
                    yield Delta(index, text)
            yield Delta(index, matcher.flush(), self._finish(streamer, options), streamer.generated)
        finally:
            # Stop strings, cancellation and errors all end the thread at its next token.
            stop_event.set()

    def _finish(self, streamer: _CountingStreamer, options: SamplingOptions) -> FinishReason:
        hit_limit = streamer.generated >= options.max_tokens
        return "length" if hit_limit and streamer.last_token not in self.eos_ids else "stop"

    def _config(self, options: SamplingOptions) -> GenerationConfig:
        config = copy.deepcopy(self._base)
        config.max_new_tokens = options.max_tokens
        config.max_length = None
        config.num_return_sequences = 1
        if options.greedy:
            config.do_sample = False
            config.temperature = config.top_p = config.top_k = None
        else:
            config.do_sample = True
            temperature = options.temperature
            config.temperature = temperature if temperature is not None else self._default_temperature
            config.top_p = options.top_p if options.top_p is not None else self._default_top_p
            config.top_k = self._default_top_k
        return config

    def _run(
        self,
        streamer: _CountingStreamer,
        prompt_ids: list[int],
        config: GenerationConfig,
        seed: int | None,
        stop_event: threading.Event,
    ) -> None:
        try:
            with self._lock:
                if stop_event.is_set():
                    return
                if seed is not None:
                    torch.manual_seed(seed)
                ids = torch.tensor([prompt_ids], dtype=torch.long, device=self.device)
                with torch.inference_mode():
                    self.model.generate(  # type: ignore[operator]
                        input_ids=ids,
                        attention_mask=torch.ones_like(ids),
                        generation_config=config,
                        streamer=streamer,
                        stopping_criteria=StoppingCriteriaList([_StopWhenSet(stop_event)]),
                    )
        except BaseException as exc:  # the consumer raises it as a job error
            log.warning("chat generation failed: %s", type(exc).__name__)
            streamer.push(exc)
        finally:
            if not streamer.ended:
                streamer.push(None)


def chat_template_ids(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, Any]]) -> list[int]:
    """Token ids of ``messages`` rendered with the tokenizer's chat template.

    Only the template's own text may produce control tokens: message text is tokenized with
    special tokens split into plain text, so a user writing ``<|im_end|>`` or ``<|eot_id|>``
    cannot end a turn or forge a system message. The template renders placeholders (keeping
    the text's outer whitespace, so a template that trims still trims), and each placeholder
    is replaced by its text's ids. The template supplies BOS itself.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise HandlerError(
            "this model has no chat template; use /v1/completions with a prompt",
            code="no_chat_template",
        )
    from jinja2 import TemplateError

    texts: dict[str, str] = {}
    masked: list[dict[str, Any]] = []
    for message in messages:
        copy_ = dict(message)
        for key in ("content", "name"):
            value = copy_.get(key)
            if isinstance(value, str) and value.strip():
                mark = f"{_MARK}{len(texts)}{_MARK}"
                texts[mark] = value.strip()
                core_start = len(value) - len(value.lstrip())
                copy_[key] = value[:core_start] + mark + value[core_start + len(texts[mark]) :]
        masked.append(copy_)
    try:
        text = str(tokenizer.apply_chat_template(masked, tokenize=False, add_generation_prompt=True))
    except TemplateError as exc:
        # Templates reject what the model cannot take (e.g. a system role); say what they said.
        raise InvalidInput("messages", f"the model's chat template rejected the messages: {exc}") from None
    ids: list[int] = []
    for piece in _MARKS.split(text):
        if piece in texts:
            ids += tokenizer(texts[piece], add_special_tokens=False, split_special_tokens=True)["input_ids"]
        elif piece:
            ids += tokenizer(piece, add_special_tokens=False)["input_ids"]
    return ids


# A private-use character, in no special token. Client text never reaches the rendered template
# (only marks do), so a mark typed by a client cannot pull in anything but plain text.
_MARK = "\ue000"
_MARKS = re.compile(f"({_MARK}\\d+{_MARK})")
