"""app/native/catalogue.py: the models page clients parse, filtered and paginated."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from app.native.catalogue import DEFAULT_PER_PAGE, InvalidQuery, parse_query, render_page
from app.routing.loader import load_routing
from app.routing.schema import RoutingConfig

ROOT = Path(__file__).resolve().parents[2]
URL = "https://gw.example/api/v1/client/models"


@pytest.fixture(scope="module")
def config() -> RoutingConfig:
    return load_routing(ROOT / "routing.yaml", env={}).config


def test_filter_lists_exactly_the_models_of_a_type(config: RoutingConfig) -> None:
    page = render_page(config, parse_query({"filter[inference_types]": "txt2img"}), URL)
    assert [m["slug"] for m in page["data"]] == ["Flux1schnell", "ZImageTurbo_INT8", "Flux_2_Klein_4B_BF16"]
    flux = page["data"][0]
    assert flux["name"] == "FLUX.1 Schnell" and flux["inference_types"] == ["txt2img"]
    assert flux["info"]["limits"]["max_steps"] == 10 and flux["info"]["defaults"]["steps"] == 4
    assert flux["info"]["features"]["supports_guidance"] is False
    assert flux["loras"] == [] and flux["languages"] == []
    assert page["meta"] == {"current_page": 1, "last_page": 1, "per_page": DEFAULT_PER_PAGE, "total": 3}


def test_several_types_match_any(config: RoutingConfig) -> None:
    page = render_page(config, parse_query({"filter[inference_types]": "img-rmbg, audio2video"}), URL)
    assert [m["slug"] for m in page["data"]] == ["Ben2", "Ltx2_3_19B_Dist_INT8"]


def test_models_without_inference_types_are_not_listed(config: RoutingConfig) -> None:
    slugs = [m["slug"] for m in render_page(config, parse_query({}), URL)["data"]]
    assert "Llama3_8B_Instruct" not in slugs
    assert "Kokoro" in slugs and "WhisperLargeV3" in slugs


def test_speech_models_carry_languages_and_voices(config: RoutingConfig) -> None:
    page = render_page(config, parse_query({"filter[inference_types]": "txt2audio"}), URL)
    kokoro = page["data"][0]
    english = kokoro["languages"][0]
    assert english["slug"] == "en-us"
    assert {"name": "Sky", "slug": "af_sky", "gender": "female"} in english["voices"]


def test_pages_and_links(config: RoutingConfig) -> None:
    everything = render_page(config, parse_query({}), URL)["meta"]["total"]
    first = render_page(config, parse_query({"per_page": "5"}), URL)
    assert len(first["data"]) == 5
    assert first["meta"]["last_page"] == -(-everything // 5)
    assert first["links"]["prev"] is None
    assert parse_qs(urlsplit(first["links"]["next"]).query) == {"page": ["2"], "per_page": ["5"]}
    last_page = first["meta"]["last_page"]
    last = render_page(config, parse_query({"per_page": "5", "page": str(last_page)}), URL)
    assert last["links"]["next"] is None and len(last["data"]) == everything - 5 * (last_page - 1)
    beyond = render_page(config, parse_query({"per_page": "5", "page": "99"}), URL)
    assert beyond["data"] == [] and beyond["links"]["next"] is None


def test_the_tester_spelling_of_page_size(config: RoutingConfig) -> None:
    assert parse_query({"limit": "3"}).per_page == 3


@pytest.mark.parametrize(
    ("params", "field"),
    [({"page": "0"}, "page"), ({"page": "x"}, "page"), ({"per_page": "1000"}, "per_page"), ({"limit": "-1"}, "limit")],
)
def test_bad_paging_names_the_field(params: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidQuery) as caught:
        parse_query(params)
    assert [f for f, _ in caught.value.errors] == [field]
