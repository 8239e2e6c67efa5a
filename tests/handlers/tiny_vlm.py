"""Tiny chat models that read images and write JSON, built on the spot (no hub).

``build_tiny_vlm`` writes a randomly initialised Qwen2-VL (the architecture of Qwen2.5-VL
and Nanonets-OCR-s) with its processor; ``build_tiny_tool_model`` a Qwen2 causal LM whose
chat template renders tools the Hermes way, as Qwen2.5 instruct models do. Both use a
byte-level BPE tokenizer, so any text (JSON, tool calls, OCR output) can be written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

QWEN_SPECIALS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|image_pad|>", "<|video_pad|>",
)
# Qwen2-VL's template, trimmed: image parts become the vision placeholder, tools go into the
# system turn as Hermes <tools>, assistant tool calls and tool results round-trip.
TEMPLATE = (
    "{%- if tools %}<|im_start|>system\nYou may call functions.\n<tools>\n"
    "{% for tool in tools %}{{ tool | tojson }}\n{% endfor %}</tools>\n"
    "Answer with <tool_call>{\"name\": ..., \"arguments\": ...}</tool_call>.<|im_end|>\n{%- endif %}"
    "{%- for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{%- elif message['content'] %}{%- for part in message['content'] %}"
    "{%- if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{%- elif part['type'] == 'text' %}{{ part['text'] }}{%- endif %}{%- endfor %}{%- endif %}"
    "{%- for call in message.get('tool_calls') or [] %}\n<tool_call>\n"
    "{\"name\": \"{{ call['function']['name'] }}\", \"arguments\": {{ call['function']['arguments'] | tojson }}}"
    "\n</tool_call>{%- endfor %}<|im_end|>\n{% endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def byte_level_tokenizer(specials: tuple[str, ...] = QWEN_SPECIALS) -> Any:
    """A GPT-2-style byte-level BPE over the 256 byte symbols plus a few merges, Qwen's specials."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {symbol: i for i, symbol in enumerate(alphabet)}
    merges: list[tuple[str, str]] = []
    for word in ("Ġthe", "Ġname", "Ġtext", "Ġarguments", "Ġhello", "Ġworld"):
        for end in range(2, len(word) + 1):
            if word[:end] not in vocab:
                vocab[word[:end]] = len(vocab)
                merges.append((word[: end - 1], word[end - 1]))
    raw = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    raw.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in specials])
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=raw, eos_token="<|im_end|>", pad_token="<|endoftext|>", model_max_length=4096,
    )
    tokenizer.chat_template = TEMPLATE
    return tokenizer


def _quiet_specials(lm_head: Any, tokenizer: Any, keep: tuple[str, ...] = ()) -> None:
    # Special tokens never win an unconstrained argmax (so max_tokens is reached), except
    # those in `keep`; constrained decoding can still pick an end-of-turn when it must.
    for token in QWEN_SPECIALS:
        if token not in keep:
            lm_head.weight[tokenizer.convert_tokens_to_ids(token)] = 0.0


def build_tiny_tool_model(directory: str | Path) -> Path:
    """A 2-layer Qwen2 (hidden 32), byte-level tokenizer, template with Hermes tools."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    path = Path(directory)
    tokenizer = byte_level_tokenizer()
    eos, pad = tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.convert_tokens_to_ids("<|endoftext|>")
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
        tie_word_embeddings=False, eos_token_id=eos, pad_token_id=pad, bos_token_id=None,
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = Qwen2ForCausalLM(config)
    with torch.no_grad():
        _quiet_specials(model.lm_head, tokenizer)
    model.generation_config = GenerationConfig(eos_token_id=eos, pad_token_id=pad)  # type: ignore[no-untyped-call]
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def build_tiny_vlm(directory: str | Path, *, eos_weight: float = 0.0) -> Path:
    """A randomly initialised Qwen2-VL (2 text layers, hidden 32; 1 vision block) and its processor.

    Images are resized to a small pixel budget (a few 28x28 patches), so a vision chat runs in
    well under a second on a CPU while going through the real patching, merging and rope code.
    ``eos_weight`` > 0 gives the end-of-turn token a random output row of that scale, so
    greedy answers end on their own after a few dozen tokens for some inputs (the OCR route
    asks for up to 4096 tokens); 0 keeps it silent (answers run to ``max_tokens``).
    """
    import torch
    from transformers import (
        GenerationConfig,
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessorPil,
    )

    path = Path(directory)
    tokenizer = byte_level_tokenizer()
    ids = tokenizer.convert_tokens_to_ids
    eos, pad = ids("<|im_end|>"), ids("<|endoftext|>")
    config = Qwen2VLConfig(
        text_config={
            "vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 16384,
            "rope_scaling": {"type": "mrope", "mrope_section": [1, 1, 2]}, "tie_word_embeddings": False,
            "eos_token_id": eos, "pad_token_id": pad, "bos_token_id": None,
        },
        vision_config={
            "depth": 1, "embed_dim": 32, "hidden_size": 32, "num_heads": 2, "mlp_ratio": 2,
            "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "in_channels": 3,
        },
        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=False,
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = Qwen2VLForConditionalGeneration(config)
    with torch.no_grad():
        _quiet_specials(model.lm_head, tokenizer)
        if eos_weight:
            model.lm_head.weight[eos] = torch.randn(32, generator=torch.Generator().manual_seed(5)) * eos_weight
    model.generation_config = GenerationConfig(eos_token_id=eos, pad_token_id=pad)  # type: ignore[no-untyped-call]
    model.save_pretrained(path)
    image_processor = Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=112 * 112)
    # Tokenizer and image processor saved side by side, as on the hub (the processor class
    # itself wants torchvision for its video half, which this CPU image does not have).
    image_processor.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
