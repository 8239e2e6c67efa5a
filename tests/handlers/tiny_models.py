"""Tiny randomly initialised models, built on the spot so handler tests need no hub.

Each builder writes a model directory that the real loading code reads, exactly as it
would read a downloaded checkpoint. Other handlers add their own builders here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


# --- transcribe (handlers/transcribe) -----------------------------------------------------

# What the tiny Whisper says, whatever it hears: (start, end, text) per segment.
TINY_WHISPER_SEGMENTS = ((0.0, 0.24, " Hello there."), (0.26, 0.48, " How are you?"))
TINY_WHISPER_LANGUAGE = "en"  # what it detects when no language is given
_WHISPER_WORDS = ("ĠHello", "Ġthere", "ĠHow", "Ġare", "Ġyou", "Ġthe", "Ġand", "Ġhello", "Ġworld")


def _whisper_tokenizer() -> Any:
    """A byte-level BPE laid out like multilingual Whisper's (ids 50257.. are the specials)."""
    from faster_whisper.tokenizer import _LANGUAGE_CODES
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    printable = [chr(c) for c in range(33, 127)]
    alphabet = printable + sorted(set(pre_tokenizers.ByteLevel.alphabet()) - set(printable))
    vocab = {symbol: i for i, symbol in enumerate(alphabet)}
    merges: list[tuple[str, str]] = []
    for word in _WHISPER_WORDS:  # whole-word tokens, so the planted transcript reads naturally
        for end in range(2, len(word) + 1):
            if word[:end] not in vocab:
                vocab[word[:end]] = len(vocab)
                merges.append((word[: end - 1], word[end - 1]))
    for first in alphabet:  # filler pairs up to GPT-2's 50256 base tokens
        for second in alphabet:
            if len(vocab) == 50256:
                break
            if first + second not in vocab:
                vocab[first + second] = len(vocab)
                merges.append((first, second))
    # CTranslate2 4.8 treats a Whisper vocabulary as multilingual when it holds the empty token.
    vocab[""] = 50256
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    languages = [code for code in _LANGUAGE_CODES if code != "yue"]  # the 99 of whisper tiny..large-v2
    specials = ["<|endoftext|>", "<|startoftranscript|>", *(f"<|{code}|>" for code in languages),
                "<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nospeech|>",
                "<|notimestamps|>"]
    tokenizer.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in specials])
    return tokenizer


def _plant_whisper_alignment(model: Any, tokenizer: Any, torch: Any) -> None:
    """Make cross-attention point each transcript token at its time, for word timestamps.

    The encoder is reduced to its position embeddings (conv and layer outputs zeroed), so
    encoder frame f carries a sinusoidal code of f; each text token's query is the code of
    the frame where it is spoken, so the DTW over the alignment heads finds those times.
    """
    encoder, decoder = model.model.encoder, model.model.decoder
    frames, width = encoder.embed_positions.weight.shape
    # (sin, cos) pairs side by side, the same periods (4 to 200 frames) in both heads, so a
    # head's dot product of two codes is a sum of cos(w * distance): largest where they meet.
    speeds = (torch.pi / 2) * (1.0 / 50) ** (torch.arange(width // 4) / (width // 4 - 1))
    angles = torch.arange(frames)[:, None] * speeds[None, :]
    codes = torch.stack([torch.sin(angles), torch.cos(angles)], dim=2).reshape(frames, width // 2).repeat(1, 2)
    encoder.embed_positions.weight.copy_(codes)
    for conv in (encoder.conv1, encoder.conv2):
        conv.weight.zero_()
        conv.bias.zero_()
    for layer in encoder.layers:
        for linear in (layer.self_attn.out_proj, layer.fc2):
            linear.weight.zero_()
            linear.bias.zero_()
    keys = torch.nn.functional.layer_norm(codes, (width,), encoder.layer_norm.weight, encoder.layer_norm.bias)
    # Whisper aligns token k with the attention of the query that predicts it, i.e. of the
    # token before it (<|notimestamps|> for the first; the last one predicts <|endoftext|>).
    text: list[int] = []
    frames_of: list[int] = []
    for start, end, words in TINY_WHISPER_SEGMENTS:
        tokens = tokenizer.encode(words).ids
        text += tokens
        frames_of += [round((start + (end - start) * (i + 0.5) / len(tokens)) / 0.02) for i in range(len(tokens))]
    frames_of.append(round(TINY_WHISPER_SEGMENTS[-1][1] / 0.02))
    queries = [tokenizer.token_to_id("<|notimestamps|>"), *text]
    for layer in decoder.layers:
        attention = layer.encoder_attn
        attention.k_proj.weight.copy_(torch.eye(width))
        attention.q_proj.weight.zero_()
        attention.q_proj.bias.zero_()
        for token, frame in zip(queries, frames_of, strict=True):
            attention.q_proj.weight += 4.0 * torch.outer(keys[frame], decoder.embed_tokens.weight[token]) / 64.0


def build_tiny_whisper_model(directory: str | Path) -> Path:
    """A tiny Whisper (2+2 layers, d_model 64, 80 mels) converted to a CTranslate2 directory.

    The directory is what faster-whisper loads for a local ``TRANSCRIBE_MODEL``: ``model.bin``,
    ``config.json``, ``vocabulary.json``, ``tokenizer.json``, ``preprocessor_config.json``;
    the vocabulary has multilingual Whisper's layout (51865 ids, 99 languages, timestamps).

    Weights are seeded random except for a planted path. Decoder attention and MLP outputs
    are zeroed, so each next token depends on the current one only, and the output
    projection maps ``<|startoftranscript|>`` to ``<|en|>`` and the task token through
    ``TINY_WHISPER_SEGMENTS`` in Whisper's timestamp format; cross-attention queries point
    at the frames where those tokens are "spoken" (see ``_plant_whisper_alignment``). So
    whatever the audio, it says "Hello there. How are you?" with sensible word times.

    Why not purely random weights: they decode near-uniform garbage (avg_logprob about -10),
    which triggers six temperature-fallback re-decodes with best_of 5 (~10 s per job on CPU
    here), places timestamps past the audio's end, and gives DTW nothing to align, so
    faster-whisper drops zero-length segments when word timestamps are on. Everything else
    is the production path: feature extraction, CTranslate2 encoder and decoder, language
    detection, beam search and sampling under the timestamp rules, fallback checks, VAD and
    DTW word alignment.
    """
    import json
    import tempfile
    from itertools import pairwise

    import torch
    from ctranslate2.converters import TransformersConverter
    from faster_whisper.tokenizer import _LANGUAGE_CODES
    from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration

    directory = Path(directory)
    if (directory / "model.bin").exists():
        return directory
    tokenizer = _whisper_tokenizer()
    ids = tokenizer.token_to_id
    eot, sot, space = ids("<|endoftext|>"), ids("<|startoftranscript|>"), ids("Ġ")
    timestamp_begin = ids("<|notimestamps|>") + 1
    config = WhisperConfig(
        vocab_size=51865, num_mel_bins=80, d_model=64, encoder_layers=2, decoder_layers=2,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=128, decoder_ffn_dim=128,
        max_source_positions=1500, max_target_positions=448, tie_word_embeddings=False,
        pad_token_id=eot, bos_token_id=eot, eos_token_id=eot, decoder_start_token_id=sot,
        suppress_tokens=[], begin_suppress_tokens=[space, eot],
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = WhisperForConditionalGeneration(config)

    def ts(seconds: float) -> int:
        return timestamp_begin + round(seconds / 0.02)

    chain = [ids("<|transcribe|>")]
    for start, end, text in TINY_WHISPER_SEGMENTS:
        chain += [ts(start), *tokenizer.encode(text).ids, ts(end)]
    chain.append(eot)
    edges = [(sot, ids(f"<|{TINY_WHISPER_LANGUAGE}|>")), *pairwise(chain),
             (ids("<|translate|>"), chain[1]), (ids("<|notimestamps|>"), chain[2])]
    decoder = model.model.decoder
    with torch.no_grad():
        for layer in decoder.layers:
            for linear in (layer.self_attn.out_proj, layer.encoder_attn.out_proj, layer.fc2):
                linear.weight.zero_()
                if linear.bias is not None:
                    linear.bias.zero_()
        decoder.embed_positions.weight.zero_()
        # Orthonormal, zero-mean embeddings for the planted tokens: the final layer norm keeps
        # them as they are, and one edge's logit does not leak into another's (beam search
        # would otherwise find short cuts into the chain and stop early).
        sources = sorted({current for current, _ in edges})
        basis = torch.randn(64, len(sources), generator=torch.Generator().manual_seed(1))
        basis, _ = torch.linalg.qr(basis - basis.mean(dim=0))
        for column, token in enumerate(sources):
            decoder.embed_tokens.weight[token] = basis[:, column] * 8.0  # norm sqrt(64): unit variance
        for current, following in edges:  # logit(following | current) = 30: probability ~ 1
            model.proj_out.weight[following] += 30.0 * decoder.embed_tokens.weight[current] / 64.0
        _plant_whisper_alignment(model, tokenizer, torch)

    languages = {f"<|{code}|>": ids(f"<|{code}|>") for code in _LANGUAGE_CODES if code != "yue"}
    model.generation_config = GenerationConfig(  # type: ignore[no-untyped-call]
        decoder_start_token_id=sot, eos_token_id=eot, pad_token_id=eot, bos_token_id=eot, max_length=448,
        suppress_tokens=[], begin_suppress_tokens=[space, eot], lang_to_id=languages, is_multilingual=True,
        task_to_id={"transcribe": ids("<|transcribe|>"), "translate": ids("<|translate|>")},
        no_timestamps_token_id=timestamp_begin - 1,
    )
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch)
        model.save_pretrained(source)
        tokenizer.save(str(source / "tokenizer.json"))
        (source / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "PreTrainedTokenizerFast"}))
        (source / "preprocessor_config.json").write_text(json.dumps({
            "feature_extractor_type": "WhisperFeatureExtractor", "feature_size": 80, "sampling_rate": 16000,
            "hop_length": 160, "chunk_length": 30, "n_fft": 400, "n_samples": 480000, "nb_max_frames": 3000,
        }))
        TransformersConverter(str(source), copy_files=["tokenizer.json", "preprocessor_config.json"]).convert(
            str(directory), force=True
        )
    return directory


# --- video (handlers/video) ----------------------------------------------------------------


def build_tiny_ltx_pipeline(directory: str | Path, *, timestep_vae: bool = False) -> Path:
    """A randomly initialised, tiny LTXPipeline (T5 encoder, LTX transformer and video VAE).

    The VAE compresses like the real LTX-Video's: 32x in space (4x4 patches, then three 2x
    downsamplings) and 8x in time, so the worker's rounding (sides to multiples of 32,
    frames to ``8k + 1``) is exercised for real; 8 latent channels and 1 transformer layer
    keep a 64x64, 17-frame clip at a second or two on a CPU. ``timestep_vae``: a
    timestep-conditioned decoder, as LTX 0.9.1 and later have. Weights are seeded, so builds
    are identical. Returns ``directory``, ready for ``VIDEO_MODEL``.
    """
    import torch
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXPipeline,
        LTXVideoTransformer3DModel,
    )
    from transformers import T5Config, T5EncoderModel, T5Tokenizer

    directory = Path(directory)
    if (directory / "model_index.json").exists():
        return directory
    torch.manual_seed(0)
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [(symbol, -1.0) for symbol in "abcdefghijklmnopqrstuvwxyz\u2581"]
    tokenizer = T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=16)
    text_encoder = T5EncoderModel(T5Config(
        vocab_size=len(pieces), d_model=16, d_kv=4, d_ff=16, num_layers=1, num_heads=2,
    ))
    transformer = LTXVideoTransformer3DModel(
        in_channels=8, out_channels=8, patch_size=1, patch_size_t=1, num_attention_heads=2,
        attention_head_dim=8, cross_attention_dim=16, num_layers=1, caption_channels=16,
    )
    vae = AutoencoderKLLTXVideo(
        in_channels=3, out_channels=3, latent_channels=8,
        block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1), decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, True, False), decoder_spatio_temporal_scaling=(True, True, True, False),
        decoder_inject_noise=(False,) * 5, upsample_residual=(False,) * 4, upsample_factor=(1,) * 4,
        timestep_conditioning=timestep_vae, patch_size=4, patch_size_t=1, encoder_causal=True, decoder_causal=False,
    )
    pipe = LTXPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=text_encoder,
        tokenizer=tokenizer, transformer=transformer,
    )
    pipe.save_pretrained(directory)
    return directory
