"""A tiny Kokoro (StyleTTS 2 + iSTFTNet) with random weights, laid out like ``hexgrad/Kokoro-82M``.

The directory holds what the hub repository holds and the worker reads: ``config.json``,
``kokoro-v1_0.pth`` (a dict of per-module state dicts, as ``KModel`` loads it) and
``voices/<name>.pt`` (a ``[510, 1, 256]`` style pack per voice). The decoder's widths are
fixed by Kokoro's code (1024/512 channels); everything configurable is made small.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# StyleTTS 2's symbol inventory (pad, punctuation, Latin letters, IPA): the phonemes that
# misaki and espeak-ng produce map to ids through this vocabulary.
_PUNCTUATION = ';:,.!?¡¿—…"«»“” '
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_IPA = "ɑɐɒæɓʙβɔɕçɗɖðʤəɘɚɛɜɝɞɟʄɡɠɢʛɦɧħɥʜɨɪʝɭɬɫɮʟɱɯɰŋɳɲɴøɵɸθœɶʘɹɺɾɻʀʁɽʂʃʈʧʉʊʋⱱʌɣɤʍχʎʏʑʐʒʔʡʕʢǀǁǂǃˈˌːˑʼʴʰʱʲʷˠˤ˞↓↑→↗↘ᵻᵊʦʣ"
TINY_KOKORO_VOICES = ("af_sky", "af_bella", "bf_emma", "ef_dora")


def _vocab() -> dict[str, int]:
    symbols = dict.fromkeys(_PUNCTUATION + _LETTERS + _IPA)  # ordered, duplicates dropped
    return {symbol: index + 1 for index, symbol in enumerate(symbols)}  # 0 is the pad/boundary id


def tiny_kokoro_config() -> dict[str, object]:
    vocab = _vocab()
    return {
        "vocab": vocab,
        "n_token": max(vocab.values()) + 1,
        "hidden_dim": 512,  # the decoder's residual path requires 512
        "style_dim": 128,
        "n_layer": 1,
        "n_mels": 80,
        "max_dur": 6,  # random duration logits: about 3 frames (75 ms) per phoneme
        "dropout": 0.0,
        "text_encoder_kernel_size": 5,
        "plbert": {
            "hidden_size": 32,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "max_position_embeddings": 512,
            "num_hidden_layers": 1,
            "dropout": 0.0,
        },
        "istftnet": {
            "upsample_kernel_sizes": [20, 12],
            "upsample_rates": [10, 6],
            "gen_istft_hop_size": 5,
            "gen_istft_n_fft": 20,
            "resblock_dilation_sizes": [[1, 3, 5]],
            "resblock_kernel_sizes": [3],
            "upsample_initial_channel": 512,
        },
    }


def build_tiny_kokoro(directory: str | Path, voices: tuple[str, ...] = TINY_KOKORO_VOICES) -> Path:
    import torch
    from kokoro import KModel

    path = Path(directory)
    (path / "voices").mkdir(parents=True, exist_ok=True)
    config = tiny_kokoro_config()
    (path / "config.json").write_text(json.dumps(config, ensure_ascii=False))
    with torch.random.fork_rng():
        torch.manual_seed(0)
        # model=... skips KModel's hub download of weights; a random init is what we save.
        model = _random_kmodel(config, torch, KModel)
        # Half precision halves the file (and the test's disk writes); loading casts it back.
        state = {
            name: {
                key: value.half() if value.is_floating_point() else value for key, value in module.state_dict().items()
            }
            for name, module in model.named_children()
        }
        torch.save(state, path / "kokoro-v1_0.pth")
        for voice in voices:
            torch.save(torch.randn(510, 1, 256) * 0.1, path / "voices" / f"{voice}.pt")
    return path


def _random_kmodel(config: dict[str, object], torch: Any, kmodel: Any) -> Any:
    # KModel always loads a checkpoint; an empty one leaves the random initialisation.
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        empty = Path(scratch) / "empty.pth"
        torch.save({}, empty)
        return kmodel(repo_id="hexgrad/Kokoro-82M", config=config, model=str(empty))
