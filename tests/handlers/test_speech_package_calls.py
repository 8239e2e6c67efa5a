"""handlers/speech/package_calls.py: the engines' calls checked against a package's source.

The real packages are not here (nor downloaded in tests); these sources are small stand-ins
written like them, one correct and one with the mistakes the check exists to catch."""

from __future__ import annotations

import textwrap
from pathlib import Path

from handlers.speech import package_calls


def english_calls() -> list[package_calls.Call]:
    return [call for call in package_calls.calls() if call.class_name == "ChatterboxTTS"]


def write(root: Path, module: str, source: str) -> None:
    path = root / (module.replace(".", "/") + ".py")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))


RIGHT = """
    class ChatterboxTTS:
        @classmethod
        def from_local(cls, ckpt_dir, device): ...
        def prepare_conditionals(self, wav_fpath, exaggeration=0.5): ...
        def generate(self, text, repetition_penalty=1.2, exaggeration=0.5, cfg_weight=0.5, temperature=0.8): ...
"""


def test_every_engine_call_is_listed() -> None:
    methods = {(call.class_name, call.method) for call in package_calls.calls()}
    for name in ("ChatterboxTTS", "ChatterboxMultilingualTTS", "ChatterboxTurboTTS"):
        assert {(name, "from_local"), (name, "prepare_conditionals"), (name, "generate")} <= methods
    qwen = ("generate_custom_voice", "generate_voice_clone", "generate_voice_design", "create_voice_clone_prompt")
    assert {("Qwen3TTSModel", method) for method in qwen} <= methods


def test_a_matching_source_passes(tmp_path: Path) -> None:
    write(tmp_path, "chatterbox.tts", RIGHT)
    assert package_calls.problems(tmp_path, english_calls()) == []


def test_renamed_keywords_and_missing_classes_are_reported(tmp_path: Path) -> None:
    write(tmp_path, "chatterbox.tts", RIGHT.replace("cfg_weight=0.5, temperature", "guidance=0.5, temp"))
    (problem,) = package_calls.problems(tmp_path, english_calls())
    assert problem == "chatterbox.tts.ChatterboxTTS.generate: no parameter cfg_weight, temperature"
    write(tmp_path, "chatterbox.tts", RIGHT.replace("def from_local(cls, ckpt_dir, device)", "def load(cls, d)"))
    assert package_calls.problems(tmp_path, english_calls()) == ["chatterbox.tts.ChatterboxTTS.from_local: not defined"]
    turbo = [call for call in package_calls.calls() if call.class_name == "ChatterboxTurboTTS"]
    assert package_calls.problems(tmp_path, turbo)[0].startswith("chatterbox.tts_turbo: no such module")


def test_a_method_taking_any_keyword_accepts_them(tmp_path: Path) -> None:
    write(tmp_path, "chatterbox.tts", RIGHT.replace("cfg_weight=0.5, temperature=0.8", "**kwargs"))
    assert package_calls.problems(tmp_path, english_calls()) == []
    assert package_calls.parameters("class A:\n def f(self, a, *, b, **c): ...", "A", "f") == (["a", "b"], True)
    assert package_calls.parameters("class A:\n def f(self): ...", "A", "g") is None
