"""Prompt boosters are priced and paid like the chat requests they are: a price call that
matches the hold, and a settlement on the tokens the worker reports."""

from __future__ import annotations

from tests.billing.conftest import INITIAL_USD, Client


def test_booster_price_routes_answer_the_price(client: Client) -> None:
    for kind in ("image", "video", "speech", "image2image"):
        response = client.http.post(f"{client.base}/prompt/{kind}/price-calculation",
                                    json={"prompt": "a cat in space", "negative_prompt": None})
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        assert data["currency"] == "USD" and data["price"] > 0
    samples = client.http.get(f"{client.base}/prompts/samples/price-calculation", params={"type": "text2image"})
    assert samples.status_code == 200 and samples.json()["data"]["price"] > 0
    bad = client.http.post(f"{client.base}/prompt/image/price-calculation", json={})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "prompt"


def test_a_booster_holds_its_quote_and_settles_on_the_reported_tokens(client: Client) -> None:
    body = {"prompt": "a cat in space", "negative_prompt": None}
    quoted = client.http.post(f"{client.base}/prompt/image/price-calculation", json=body).json()["data"]["price"]
    answer = client.http.post(f"{client.base}/prompt/image", json=body)
    assert answer.status_code == 200, answer.text
    spent = round(INITIAL_USD - client.balance(), 6)
    assert 0 < spent < quoted  # the worker used 3 prompt tokens and a few output ones, far below the hold
