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

from handlers.chat.engine import ChatSettings, Delta, EngineKind, SamplingOptions, check_max_model_len
from handlers.chat.engine_transformers import chat_template_ids
from handlers.common.errors import HandlerError

log = logging.getLogger("dryapi.handlers.chat")

# Model defaults (generation_config.json) that map onto vLLM's SamplingParams.
_DEFAULT_KEYS = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty")


class VLLMEngine:
    kind: EngineKind = "vllm"

    def __init__(self, engine: Any, tokenizer: Any, max_model_len: int, defaults: dict[str, Any]) -> None:
        self._engine = engine
        self.tokenizer = tokenizer
        self.max_model_len = max_model_len
        self._defaults = defaults

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
        check_max_model_len(settings, AutoConfig.from_pretrained(path, trust_remote_code=settings.trust_remote_code))
        args: dict[str, Any] = {k: v for k, v in settings.vllm_args.items() if v is not None}
        if settings.max_model_len:
            args["max_model_len"] = settings.max_model_len
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
        defaults = {key: value for key, value in model_config.get_diff_sampling_param().items() if key in _DEFAULT_KEYS}
        log.info(
            "chat engine loaded: vllm, %s, context %d, %.1fs",
            settings.model,
            model_config.max_model_len,
            time.monotonic() - started,
        )
        return cls(engine, tokenizer, int(model_config.max_model_len), defaults)

    def chat_prompt_ids(self, messages: list[dict[str, Any]]) -> list[int]:
        return chat_template_ids(self.tokenizer, messages)

    def text_prompt_ids(self, prompt: str) -> list[int]:
        return list(self.tokenizer(prompt)["input_ids"])

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
        return SamplingParams(
            n=options.n,
            max_tokens=options.max_tokens,
            stop=list(options.stop) or None,
            seed=options.seed,
            # DELTA: each output carries only new text, so nothing is re-sent per token.
            output_kind=RequestOutputKind.DELTA,
            **kwargs,
        )

    async def generate(self, prompt_ids: list[int], options: SamplingOptions) -> AsyncGenerator[Delta, None]:
        from vllm import TokensPrompt

        counts = [0] * options.n
        request_id = f"chat-{uuid.uuid4().hex}"
        # Cancelling this generator (client gone, job cancelled) makes vLLM abort the request.
        async for output in self._engine.generate(
            TokensPrompt(prompt_token_ids=prompt_ids), self._params(options), request_id
        ):
            for choice in output.outputs:
                counts[choice.index] += len(choice.token_ids)
                finish = choice.finish_reason
                if finish is None:
                    if choice.text:
                        yield Delta(choice.index, choice.text)
                    continue
                if finish not in ("stop", "length"):
                    raise HandlerError(f"generation ended early ({finish})", code="generation_failed")
                yield Delta(choice.index, choice.text, finish, counts[choice.index])
