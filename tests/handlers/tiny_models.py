"""Tiny randomly initialised models, built on the spot so handler tests need no hub.

Each builder writes a model directory that the real loading code reads, exactly as it
would read a downloaded checkpoint. Other handlers add their own builders here.
"""

from __future__ import annotations

from pathlib import Path

# --- chat --------------------------------------------------------------------------------

CHAT_SPECIAL_TOKENS = ("<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>")
_CHAT_SENTENCES = (
    "system user assistant tool developer",
    "hello world how are you today",
    "the quick brown fox jumps over the lazy dog",
    "paris is the capital of france and berlin is the capital of germany",
    "one two three four five six seven eight nine ten",
    "a small model writes short answers about cats and dogs",
    "say something nice please thank you",
)
# ChatML, as Qwen instruct models use it; the template supplies the turn markers.
_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tiny_chat_model(directory: str | Path) -> Path:
    """A 2-layer Llama (hidden 32) with a word-level tokenizer and a ChatML template.

    Special tokens get all-zero output rows, so greedy decoding never ends early and
    always produces plain words: tests can rely on ``max_tokens`` being reached.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)

    raw = Tokenizer(models.WordLevel(unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    # Joins words with spaces when decoding, so streamed text breaks at word boundaries.
    raw.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    raw.train_from_iterator(_CHAT_SENTENCES, trainers.WordLevelTrainer(special_tokens=list(CHAT_SPECIAL_TOKENS)))
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=raw,
        unk_token="<unk>",
        pad_token="<|endoftext|>",
        eos_token="<|im_end|>",
        model_max_length=512,
    )
    tokenizer.chat_template = _CHAT_TEMPLATE
    special_ids = [raw.token_to_id(token) for token in CHAT_SPECIAL_TOKENS]
    eos_id = raw.token_to_id("<|im_end|>")
    pad_id = raw.token_to_id("<|endoftext|>")

    config = LlamaConfig(
        vocab_size=raw.get_vocab_size(),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=False,
        bos_token_id=None,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = LlamaForCausalLM(config)
    with torch.no_grad():
        model.lm_head.weight[special_ids] = 0.0
    model.generation_config = GenerationConfig(eos_token_id=eos_id, pad_token_id=pad_id)  # type: ignore[no-untyped-call]
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


# --- images (handlers/images) ------------------------------------------------------------


def _image_clip_vocab() -> dict[str, int]:
    """A CLIP vocabulary over the byte-level alphabet: every text tokenizes, no merges needed."""
    from tokenizers import pre_tokenizers

    vocab: dict[str, int] = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for symbol in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[symbol] = len(vocab)
        vocab[symbol + "</w>"] = len(vocab)
    return vocab


def build_tiny_image_pipeline(directory: str | Path) -> Path:
    """A randomly initialised, tiny StableDiffusionPipeline saved to ``directory``.

    64x64 images (8x8 latents; VAE factor 8 like real SD), a one-layer CLIP text encoder and
    a tokenizer written here, so nothing comes from the hub. Weights are seeded, so builds
    are identical. Returns ``directory``, ready for ``IMAGES_MODEL``.
    """
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    directory = Path(directory)
    if (directory / "model_index.json").exists():
        return directory
    torch.manual_seed(0)
    vocab = _image_clip_vocab()
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=16)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, max_position_embeddings=16, projection_dim=16,
        bos_token_id=0, eos_token_id=1, pad_token_id=1,
    ))
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(16, 32), norm_num_groups=8, cross_attention_dim=16, attention_head_dim=2,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
    )
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
        block_out_channels=(8, 8, 8, 8), norm_num_groups=4, sample_size=64,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1,
    )
    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.save_pretrained(directory)
    return directory


def build_tiny_flux_pipeline(directory: str | Path) -> Path:
    """A randomly initialised, tiny FluxPipeline (CLIP + T5 encoders, packed latents).

    Exercises the Flux-specific paths (resolution step 16, ``true_cfg_scale``) on CPU in
    milliseconds. Its native size is still Flux's 1024, so callers pass width/height.
    """
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTokenizer,
        T5Config,
        T5EncoderModel,
        T5Tokenizer,
    )

    directory = Path(directory)
    if (directory / "model_index.json").exists():
        return directory
    torch.manual_seed(0)
    vocab = _image_clip_vocab()
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=16)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(vocab), hidden_size=8, intermediate_size=16, num_hidden_layers=1,
        num_attention_heads=2, max_position_embeddings=16, projection_dim=8,
        bos_token_id=0, eos_token_id=1, pad_token_id=1,
    ))
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [(symbol, -1.0) for symbol in "abcdefghijklmnopqrstuvwxyz\u2581"]
    tokenizer_2 = T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=16)
    text_encoder_2 = T5EncoderModel(T5Config(
        vocab_size=len(pieces), d_model=8, d_kv=4, d_ff=16, num_layers=1, num_heads=2,
    ))
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
        block_out_channels=(4, 4, 4, 4), norm_num_groups=4, sample_size=64,
        shift_factor=0.0, scaling_factor=1.0,  # Flux's decode step needs both set
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    )
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=4,
        num_attention_heads=2, joint_attention_dim=8, pooled_projection_dim=8,
        axes_dims_rope=(0, 2, 2), guidance_embeds=False,  # schnell-style: no guidance embedding
    )
    pipe = FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=text_encoder,
        tokenizer=tokenizer, text_encoder_2=text_encoder_2, tokenizer_2=tokenizer_2,
        transformer=transformer,
    )
    pipe.save_pretrained(directory)
    return directory
