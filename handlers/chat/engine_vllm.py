"""The vLLM engine: GPU, true token streaming, continuous batching across concurrent jobs.

Only imported when ``CHAT_ENGINE`` resolves to vllm, and vLLM itself is imported inside
``load`` so that importing this module never needs a GPU. Prompts are tokenized here with
the model's own tokenizer and handed to vLLM as token ids, so ``usage.prompt_tokens`` is
counted exactly as the transformers engine counts it.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncGenerator
from typing import Any

from handlers.chat.engine import (
    ChatSettings,
    Delta,
    EngineKind,
    Prompt,
    SamplingOptions,
    TokenLogprob,
    check_max_model_len,
)
from handlers.chat.template import chat_template_ids
from handlers.chat.vision import (
    expand_image_tokens,
    image_inputs,
    image_token_id,
    is_vision_config,
    load_chat_template,
)
from handlers.common.errors import HandlerError, InvalidInput

log = logging.getLogger("dryapi.handlers.chat")

# Model defaults (generation_config.json) that map onto vLLM's SamplingParams.
_DEFAULT_KEYS = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty")


class VLLMEngine:
    kind: EngineKind = "vllm"

    def __init__(
        self,
        engine: Any,
        tokenizer: Any,
        max_model_len: int,
        defaults: dict[str, Any],
        image_processor: Any = None,
        image_token: int = -1,
    ) -> None:
        self._engine = engine
        self.tokenizer = tokenizer
        self.max_model_len = max_model_len
        self._defaults = defaults
        # Vision models: the HF image processor only counts each image's tokens (usage and the
        # context check); vLLM preprocesses the images itself.
        self.image_processor = image_processor
        self.vision = image_processor is not None
        self._image_token = image_token

    @classmethod
    def build(cls, settings: ChatSettings) -> VLLMEngine:
        """Load and compile the model. Best called before any event loop runs: AsyncLLM then
        starts its output handler on the first request, in the loop that serves jobs."""
        from transformers import AutoConfig, AutoTokenizer
        from vllm import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        started = time.monotonic()
        path = settings.model_path()
        # vLLM would refuse too, deep in its config code; this says which setting to change.
        config = AutoConfig.from_pretrained(path, trust_remote_code=settings.trust_remote_code)
        check_max_model_len(settings, config)
        args: dict[str, Any] = {k: v for k, v in settings.vllm_args.items() if v is not None}
        if settings.max_model_len:
            args["max_model_len"] = settings.max_model_len
        if is_vision_config(config):
            # Room for as many images per prompt as the worker accepts (CHAT_MAX_IMAGES).
            args["limit_mm_per_prompt"] = {"image": settings.max_images}
        engine_args = AsyncEngineArgs(
            model=path,
            served_model_name=[settings.served_name],
            trust_remote_code=settings.trust_remote_code,
            disable_log_stats=True,
            **args,
        )
        engine = AsyncLLM.from_engine_args(engine_args)
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=settings.trust_remote_code)
        model_config = engine.model_config
        image_processor, image_token = None, -1
        if is_vision_config(config):
            from transformers import AutoImageProcessor

            load_chat_template(tokenizer, path)
            image_processor = AutoImageProcessor.from_pretrained(  # type: ignore[no-untyped-call]
                path, trust_remote_code=settings.trust_remote_code
            )
            image_token = image_token_id(tokenizer, config)
        defaults = {key: value for key, value in model_config.get_diff_sampling_param().items() if key in _DEFAULT_KEYS}
        log.info(
            "chat engine loaded: vllm, %s, context %d, %.1fs",
            settings.model,
            model_config.max_model_len,
            time.monotonic() - started,
        )
        return cls(engine, tokenizer, int(model_config.max_model_len), defaults, image_processor, image_token)

    def chat_prompt(
        self, messages: list[dict[str, Any]], images: list[Any], tools: list[dict[str, Any]] | None
    ) -> Prompt:
        ids = chat_template_ids(self.tokenizer, messages, tools)
        if not images:
            return Prompt(ids, len(ids))
        _, counts = image_inputs(self.image_processor, images)
        # vLLM expands the placeholders itself: it gets one per image, with the decoded images
        # (never a URL: everything it reads was fetched under the media helper's rules).
        return Prompt(ids, len(expand_image_tokens(ids, self._image_token, counts, "messages")), images)

    def text_prompt(self, prompt: str) -> Prompt:
        ids = list(self.tokenizer(prompt)["input_ids"])
        return Prompt(ids, len(ids))

    def check(self, options: SamplingOptions, param: str) -> None:
        """vLLM compiles the schema (xgrammar) when the request is added; it refuses there."""

    def _params(self, options: SamplingOptions) -> Any:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        kwargs: dict[str, Any] = dict(self._defaults)
        if options.temperature is not None:
            kwargs["temperature"] = options.temperature
        if options.top_p is not None and options.top_p > 0:
            kwargs["top_p"] = options.top_p
        if options.greedy:
            # Greedy: drop the model's truncation defaults, they cannot change the argmax.
            for key in ("top_p", "top_k", "min_p"):
                kwargs.pop(key, None)
            kwargs["temperature"] = 0.0
        for key in ("presence_penalty", "frequency_penalty"):
            value = getattr(options, key)
            if value is not None:
                kwargs[key] = value
        if options.constraint is not None:
            from vllm.sampling_params import StructuredOutputsParams

            schema = options.constraint.schema
            structured = StructuredOutputsParams(json=schema) if schema else StructuredOutputsParams(json_object=True)
            kwargs["structured_outputs"] = structured
        if options.logprobs is not None:
            kwargs["logprobs"] = options.logprobs
        return SamplingParams(
            n=options.n,
            max_tokens=options.max_tokens,
            stop=list(options.stop) or None,
            seed=options.seed,
            # DELTA: each output carries only new text, so nothing is re-sent per token.
            output_kind=RequestOutputKind.DELTA,
            **kwargs,
        )

    async def generate(self, prompt: Prompt, options: SamplingOptions) -> AsyncGenerator[Delta, None]:
        from vllm import TokensPrompt

        counts = [0] * options.n
        request_id = f"chat-{uuid.uuid4().hex}"
        inputs = TokensPrompt(prompt_token_ids=prompt.ids)
        if prompt.images:
            inputs["multi_modal_data"] = {"image": prompt.images}
        try:
            params = self._params(options)
        except ValueError as exc:  # vLLM validates sampling and schema arguments here
            raise InvalidInput("response_format", f"vLLM refused the request: {str(exc)[:200]}") from None
        # Cancelling this generator (client gone, job cancelled) makes vLLM abort the request.
        async for output in self._engine.generate(inputs, params, request_id):
            for choice in output.outputs:
                counts[choice.index] += len(choice.token_ids)
                logprobs = self._logprobs(choice, options) if options.logprobs is not None else None
                finish = choice.finish_reason
                if finish is None:
                    if choice.text or logprobs:
                        yield Delta(choice.index, choice.text, logprobs=logprobs)
                    continue
                if finish not in ("stop", "length"):
                    raise HandlerError(f"generation ended early ({finish})", code="generation_failed")
                yield Delta(choice.index, choice.text, finish, counts[choice.index], logprobs)

    def _logprobs(self, choice: Any, options: SamplingOptions) -> list[TokenLogprob]:
        """vLLM's per-token ``{token_id: Logprob}`` maps (the chosen token always among them)."""
        entries: list[TokenLogprob] = []
        for token_id, ranked in zip(choice.token_ids, choice.logprobs or (), strict=False):
            chosen = ranked[token_id]
            # The chosen token is in the map even outside the top k; sorting keeps the top k.
            top = sorted(((self._text(tid, lp), lp.logprob) for tid, lp in ranked.items()), key=lambda p: -p[1])
            top = top[: options.logprobs or 0]
            entries.append(TokenLogprob(self._text(token_id, chosen), chosen.logprob, tuple(top)))
        return entries

    def _text(self, token_id: int, logprob: Any) -> str:
        decoded = getattr(logprob, "decoded_token", None)
        return decoded if decoded is not None else str(self.tokenizer.decode([token_id]))
