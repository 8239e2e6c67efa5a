"""app/tasks/model_limits.py: parameters against a model's published limits and features."""

from __future__ import annotations

from app.routing.schema import ModelInfo
from app.tasks.model_limits import check, with_defaults

FLUX = ModelInfo(
    limits={"min_width": 256, "max_width": 2048, "min_height": 256, "max_height": 2048, "resolution_step": 8,
            "min_steps": 1, "max_steps": 10, "max_input_images": 2, "min_text": 1, "max_text": 5,
            "max_speed": "2"},
    features={"supports_guidance": False, "supports_negative_prompt": False, "supports_steps": True},
    defaults={"width": 1024, "steps": 4},
)


def test_within_limits_is_clean() -> None:
    assert check(FLUX, {"width": 512, "height": 1024, "steps": 4, "guidance": 0, "negative_prompt": ""}) == []


def test_every_bad_field_is_named_once() -> None:
    errors = check(FLUX, {"width": 100, "height": 4096, "steps": 11, "guidance": 3.5, "negative_prompt": "ugly"})
    assert errors == [
        ("width", "The width must be between 256 and 2048."),
        ("height", "The height must be between 256 and 2048."),
        ("steps", "The steps must be between 1 and 10."),
        ("guidance", "The model does not support guidance."),
        ("negative_prompt", "The model does not support negative_prompt."),
    ]


def test_resolution_step() -> None:
    assert check(FLUX, {"width": 513, "height": 512}) == [("width", "The width must be a multiple of 8.")]


def test_counts_and_lengths() -> None:
    assert check(FLUX, {"images": ["a", "b", "c"]}) == [("images", "The images may not be greater than 2 images.")]
    assert check(FLUX, {"text": "abcdef"}) == [("text", "The text must be between 1 and 5 characters.")]
    assert check(FLUX, {"text": ""}) == [("text", "The text must be between 1 and 5 characters.")]


def test_numeric_strings_in_limits_and_params() -> None:
    assert check(FLUX, {"speed": "2.5"}) == [("speed", "The speed may not be greater than 2.")]
    assert check(FLUX, {"speed": 1.5, "width": "512"}) == []


def test_only_a_lower_bound() -> None:
    info = ModelInfo(limits={"min_fps": 24})
    assert check(info, {"fps": 8}) == [("fps", "The fps must be at least 24.")]


def test_defaults_fill_only_missing_fields() -> None:
    filled = with_defaults(FLUX, {"width": 512, "steps": None}, ("width", "steps", "height"))
    assert filled == {"width": 512, "steps": 4}
