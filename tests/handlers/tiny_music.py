"""Tiny randomly initialised music models, built on the spot so the music worker's tests need no hub.

Each builder writes the directory layout the real checkpoint has (diffusers' for ACE-Step,
transformers' for MusicGen), saved by the libraries' own ``save_pretrained``; the worker
loads it exactly as it loads a hub id. Weights are seeded, so builds are identical.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# The real Oobleck VAE makes 48 kHz stereo at 25 latent frames per second (1920 samples each);
# the tiny one keeps the 25 Hz and the stereo at a third of the rate, for 2-core CI machines.
ACE_RATE = 16_000
MUSICGEN_RATE = 32_000  # as musicgen-small: 32 kHz mono, 640 samples per codec frame (50 Hz)


def build_tiny_acestep_pipeline(directory: str | Path, *, turbo: bool = True) -> Path:
    """An ``AceStepPipeline`` with a 1-layer Qwen3 text encoder, a 2-layer DiT and a tiny stereo
    Oobleck VAE at 16 kHz and 25 latent frames per second, like the real one (2·4·4·4·5 = 640).
    ``turbo``: guidance distilled (the catalogue's model), else a base checkpoint that applies
    ``guidance_scale``."""
    import diffusers
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3Model

    directory = Path(directory)
    if (directory / "model_index.json").exists():
        return directory
    d: Any = diffusers  # untyped constructors
    torch.manual_seed(0)
    words = ["<unk>", "<pad>", "<|endoftext|>", *"abcdefghijklmnopqrstuvwxyz0123456789#:[]"]
    raw = Tokenizer(models.WordLevel({word: i for i, word in enumerate(words)}, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=raw, unk_token="<unk>", pad_token="<pad>", eos_token="<|endoftext|>"
    )
    text_encoder = Qwen3Model(Qwen3Config(
        vocab_size=len(words), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, head_dim=8,
    ))  # fmt: skip
    acoustic = 8  # latent channels; the real model has 64
    transformer = d.AceStepTransformer1DModel(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
        head_dim=16, in_channels=acoustic * 3, audio_acoustic_hidden_dim=acoustic, patch_size=2, sliding_window=16,
        is_turbo=turbo, model_version="turbo" if turbo else "base",
    )  # fmt: skip
    condition_encoder = d.AceStepConditionEncoder(
        hidden_size=32, intermediate_size=64, text_hidden_dim=16, timbre_hidden_dim=acoustic,
        num_lyric_encoder_hidden_layers=1, num_timbre_encoder_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, head_dim=16, sliding_window=16,
    )  # fmt: skip
    # The encoder writes mean and scale: twice the latent channels.
    vae = d.AutoencoderOobleck(
        encoder_hidden_size=2 * acoustic, downsampling_ratios=[2, 4, 4, 4, 5], channel_multiples=[1, 1, 1, 1, 1],
        decoder_channels=4, decoder_input_channels=acoustic, audio_channels=2, sampling_rate=ACE_RATE,
    )  # fmt: skip
    pipe = d.AceStepPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, transformer=transformer,
        condition_encoder=condition_encoder,
        scheduler=d.FlowMatchEulerDiscreteScheduler(num_train_timesteps=1, shift=1.0),
    )  # fmt: skip
    pipe.save_pretrained(directory)
    return directory


def build_tiny_musicgen(directory: str | Path) -> Path:
    """A ``MusicgenForConditionalGeneration`` with a 1-layer T5 encoder, a 1-layer decoder over
    4 codebooks of 64 codes, and a tiny EnCodec at musicgen-small's rate (32 kHz, 50 frames/s);
    its processor (T5 tokenizer + EnCodec feature extractor) is saved beside it."""
    import torch
    from transformers import (
        EncodecConfig,
        EncodecFeatureExtractor,
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
        MusicgenProcessor,
        T5Config,
        T5Tokenizer,
    )

    directory = Path(directory)
    if (directory / "config.json").exists():
        return directory
    torch.manual_seed(0)
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [(symbol, -1.0) for symbol in "abcdefghijklmnopqrstuvwxyz0123456789,/\u2581"]
    tokenizer = T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=64)
    codes = 64
    audio = EncodecConfig(
        target_bandwidths=[1.2], sampling_rate=MUSICGEN_RATE, audio_channels=1, hidden_size=8, num_filters=2,
        num_residual_layers=1, upsampling_ratios=[8, 5, 4, 4], codebook_size=codes, codebook_dim=8,
        num_lstm_layers=1, normalize=False,
    )  # fmt: skip
    decoder = MusicgenDecoderConfig(
        vocab_size=codes, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, ffn_dim=32,
        num_codebooks=audio.num_quantizers, max_position_embeddings=2048, pad_token_id=codes, bos_token_id=codes,
    )  # fmt: skip
    text = T5Config(vocab_size=len(pieces), d_model=16, d_kv=4, d_ff=16, num_layers=1, num_heads=2)
    model = MusicgenForConditionalGeneration(MusicgenConfig(text_encoder=text, audio_encoder=audio, decoder=decoder))
    with torch.no_grad():  # a fresh EnCodec's codebooks are zeros: every code would decode alike
        quantizer: Any = model.audio_encoder.quantizer
        for layer in quantizer.layers:
            layer.codebook.embed.normal_()
            layer.codebook.embed_avg.copy_(layer.codebook.embed)
    model.generation_config.decoder_start_token_id = codes
    model.generation_config.pad_token_id = codes
    model.generation_config.guidance_scale = 3.0  # musicgen-small's own default
    model.save_pretrained(directory)
    processor = MusicgenProcessor(  # type: ignore[no-untyped-call]
        feature_extractor=EncodecFeatureExtractor(feature_size=1, sampling_rate=MUSICGEN_RATE), tokenizer=tokenizer
    )
    processor.save_pretrained(directory)
    return directory
