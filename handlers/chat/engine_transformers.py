"""The transformers engine: CPU and small GPUs, one sequence at a time.

``model.generate`` runs in a thread and pushes words through a streamer into the event
loop, so the handler streams while the loop stays free. A lock serialises generations:
the global torch RNG (what ``seed`` sets) and the CPU cores are shared by every job.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
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
    LogitsProcessor,
    LogitsProcessorList,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    StoppingCriteria,
    StoppingCriteriaList,
)

from handlers.chat.constrain import JsonConstrainer
from handlers.chat.engine import (
    ChatSettings,
    Delta,
    EngineKind,
    FinishReason,
    Prompt,
    SamplingOptions,
    TokenLogprob,
    check_max_model_len,
    context_limit,
)
from handlers.chat.stops import StopMatcher
from handlers.chat.template import chat_template_ids
from handlers.chat.vision import expand_image_tokens, image_inputs, image_token_id, is_vision_config, load_chat_template
from handlers.common.errors import HandlerError

__all__ = ["TransformersEngine", "chat_template_ids"]

log = logging.getLogger("dryapi.handlers.chat")

# Tokenizers without a real limit report a huge model_max_length; never trust that.
_FALLBACK_CONTEXT = 2048


class _LogprobRecorder(LogitsProcessor):
    """Keeps the step's log-probabilities (last in the processor list: after temperature,
    top_p and any JSON constraint, i.e. the distribution the token is drawn from) until the
    streamer learns which token was chosen."""

    def __init__(self) -> None:
        self.pending: torch.Tensor | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self.pending = torch.log_softmax(scores[0].float(), dim=-1)
        return scores


class _CountingStreamer(AsyncTextIteratorStreamer):
    """The library's async streamer, also counting generated tokens for ``usage``."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, top: int | None = None) -> None:
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self.generated = 0
        self.last_token: int | None = None
        self.ended = False
        self.recorder = _LogprobRecorder() if top is not None else None
        self.top = top or 0
        self.logprobs: list[TokenLogprob] = []  # appended by the generating thread

    def put(self, value: torch.Tensor) -> None:
        if not (self.skip_prompt and self.next_tokens_are_prompt):
            ids = value.reshape(-1).tolist()
            self.generated += len(ids)
            if ids:
                self.last_token = int(ids[-1])
                if self.recorder is not None and self.recorder.pending is not None:
                    self.logprobs.append(self._entry(int(ids[-1]), self.recorder.pending))
        super().put(value)  # type: ignore[no-untyped-call]

    def _entry(self, token: int, row: torch.Tensor) -> TokenLogprob:
        def decode(ids: list[int]) -> str:
            return str(self.tokenizer.decode(ids))

        top: tuple[tuple[str, float], ...] = ()
        if self.top:
            values, indices = torch.topk(row, self.top)
            top = tuple((decode([int(i)]), float(v)) for v, i in zip(values.tolist(), indices.tolist(), strict=True))
        return TokenLogprob(decode([token]), float(row[token]), top)

    def take_logprobs(self) -> list[TokenLogprob] | None:
        if self.recorder is None:
            return None
        taken, self.logprobs = self.logprobs, []
        return taken

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

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        model: PreTrainedModel,
        max_model_len: int,
        image_processor: Any = None,
        json_max_whitespace: int = 8,
    ) -> None:
        self.tokenizer = tokenizer
        self.model = model
        self.max_model_len = max_model_len
        self.image_processor = image_processor
        self.vision = image_processor is not None
        self._image_token = image_token_id(tokenizer, model.config) if self.vision else -1
        self.constrainer = JsonConstrainer(tokenizer, json_max_whitespace)
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
        remote = settings.trust_remote_code
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=remote)
        image_processor = None
        if is_vision_config(config):
            load_chat_template(tokenizer, path)
            from transformers import AutoImageProcessor, AutoModelForImageTextToText

            # Tokenizer and image processor rather than AutoProcessor: the processor class
            # also builds a video processor, which needs torchvision (not in the CPU image).
            image_processor = AutoImageProcessor.from_pretrained(path, trust_remote_code=remote)  # type: ignore[no-untyped-call]
            model = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype, trust_remote_code=remote)
        else:
            model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, trust_remote_code=remote)
        model.to("cuda" if cuda else "cpu").eval()  # type: ignore[arg-type]
        limit = settings.max_model_len or context_limit(model.config)
        if not limit:
            limit = tokenizer.model_max_length if tokenizer.model_max_length < 10**7 else _FALLBACK_CONTEXT
        log.info(
            "chat engine loaded: transformers, %s on %s, context %d, %.1fs",
            settings.model,
            "cuda" if cuda else "cpu",
            limit,
            time.monotonic() - started,
        )
        whitespace = int(os.environ.get("CHAT_JSON_MAX_WHITESPACE", "").strip() or 8)
        return cls(tokenizer, model, int(limit), image_processor, whitespace)

    def chat_prompt(
        self, messages: list[dict[str, Any]], images: list[Any], tools: list[dict[str, Any]] | None
    ) -> Prompt:
        ids = chat_template_ids(self.tokenizer, messages, tools)
        if not images:
            return Prompt(ids, len(ids))
        inputs, counts = image_inputs(self.image_processor, images)
        expanded = expand_image_tokens(ids, self._image_token, counts, "messages")
        return Prompt(ids, len(expanded), images, {"input_ids": expanded, **inputs})

    def text_prompt(self, prompt: str) -> Prompt:
        ids = list(self.tokenizer(prompt)["input_ids"])
        return Prompt(ids, len(ids))

    def check(self, options: SamplingOptions, param: str) -> None:
        """Refuse, before generating, a JSON schema the constrained decoder cannot follow."""
        if options.constraint is not None:
            self.constrainer.check(options.constraint, param)

    async def generate(self, prompt: Prompt, options: SamplingOptions) -> AsyncGenerator[Delta, None]:
        # Choices run one after another: the streamer follows a single sequence.
        for index in range(options.n):
            seed = None if options.seed is None else options.seed + index
            async with contextlib.aclosing(self._one(prompt, options, index, seed)) as deltas:
                async for delta in deltas:
                    yield delta

    async def _one(
        self, prompt: Prompt, options: SamplingOptions, index: int, seed: int | None
    ) -> AsyncGenerator[Delta, None]:
        streamer = _CountingStreamer(self.tokenizer, options.logprobs)
        stop_event = threading.Event()
        matcher = StopMatcher(options.stop)
        kwargs = self._model_inputs(prompt, options, streamer)
        thread = threading.Thread(
            target=self._run,
            args=(streamer, kwargs, self._config(options), seed, stop_event),
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
                    yield Delta(index, text, "stop", streamer.generated, streamer.take_logprobs())
                    return
                if text:
                    yield Delta(index, text, logprobs=streamer.take_logprobs())
            finish = self._finish(streamer, options)
            yield Delta(index, matcher.flush(), finish, streamer.generated, streamer.take_logprobs())
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

    def _model_inputs(self, prompt: Prompt, options: SamplingOptions, streamer: _CountingStreamer) -> dict[str, Any]:
        extra = dict(prompt.extra)
        ids = torch.tensor([extra.pop("input_ids", prompt.ids)], dtype=torch.long, device=self.device)
        kwargs: dict[str, Any] = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        kwargs.update({key: value.to(self.device) for key, value in extra.items()})
        if "pixel_values" in kwargs:
            kwargs["pixel_values"] = kwargs["pixel_values"].to(self.model.dtype)
        if options.constraint is not None:
            kwargs["prefix_allowed_tokens_fn"] = self.constrainer.prefix_fn(options.constraint, "response_format")
        if streamer.recorder is not None:
            kwargs["logits_processor"] = LogitsProcessorList([streamer.recorder])
        return kwargs

    def _run(
        self,
        streamer: _CountingStreamer,
        kwargs: dict[str, Any],
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
                with torch.inference_mode():
                    self.model.generate(  # type: ignore[operator]
                        **kwargs,
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
