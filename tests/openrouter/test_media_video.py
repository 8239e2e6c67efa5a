"""OpenRouter's async video jobs through the official ``openrouter`` SDK: submit, poll, download
the MP4 the fake worker produced (charged like the native twin), failures, other keys' jobs,
bad bodies, and the video model list."""

from __future__ import annotations

import base64
import time
from typing import Any, cast

import httpx
import pytest

from tests.handlers.static_files import static_server
from tests.openrouter import media_workers
from tests.openrouter.media_support import Tenant, error_param

# Video -------------------------------------------------------------------------------------------


def _poll(tenant: Tenant, job_id: str, timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        job = tenant.sdk.video_generation.get_generation(job_id=job_id)
        if job.status not in ("pending", "in_progress") or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def test_a_video_job_round_trip_downloads_the_workers_mp4(media_tenant: Tenant, media_twin: Tenant) -> None:
    prompt = "a red fox in the snow"
    job = media_tenant.sdk.video_generation.generate(model="Ltx2_3_19B_Dist_INT8", prompt=prompt, duration=2,
                                                     resolution="480p", aspect_ratio="16:9", seed=5)
    assert job.status == "pending" and job.polling_url.endswith(f"/api/v1/videos/{job.id}")
    done = _poll(media_tenant, job.id)
    assert done.status == "completed", done
    # What the worker was asked: 2 s at the model's 24 fps (+1 frame), 480p at 16:9 on a 32-pixel grid.
    seen = media_workers.SEEN[prompt]
    assert (seen["task"], seen["frames"], seen["width"], seen["height"], seen["seed"]) == \
        ("txt2video", 49, 864, 480, 5)
    content = media_tenant.sdk.video_generation.get_video_content(job_id=job.id)
    assert content.headers["content-type"] == "video/mp4"
    assert content.read() == media_workers.CLIP
    assert done.urls is not None and done.expires_at is not None and done.expires_at > time.time()
    assert httpx.get(done.urls[0]).content == media_workers.CLIP  # the signed link needs no key
    assert done.unsigned_urls == [f"{job.polling_url}/content?index=0"]
    # The native twin with the same task fields is charged the same.
    native = media_twin.account.http.post(f"{media_twin.account.base}/txt2video", json={
        "model": "Ltx2_3_19B_Dist_INT8", "prompt": "twin", "frames": 49, "width": 864, "height": 480, "seed": 5})
    assert native.status_code == 200, native.text
    assert media_tenant.spent() == media_twin.spent() > 0
    # The poll reports what the job was charged (its settlement in the ledger).
    assert done.usage is not None and done.usage.cost == media_tenant.spent()


def test_a_first_frame_makes_it_img2video(media_tenant: Tenant) -> None:
    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC")
    frame = {"type": "image_url", "frame_type": "first_frame",
             "image_url": {"url": "data:image/png;base64," + base64.b64encode(png).decode()}}
    job = media_tenant.sdk.video_generation.generate(model="Ltx2_3_19B_Dist_INT8", prompt="the fox runs",
                                                     frame_images=cast(Any, [frame]))
    assert _poll(media_tenant, job.id).status == "completed"
    seen = media_workers.SEEN["the fox runs"]
    assert seen["task"] == "img2video" and seen["first_frame_image"].startswith("http")


def test_a_first_frame_by_url_is_fetched_and_staged(media_tenant: Tenant) -> None:
    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC")
    with static_server({"/frame.png": (png, "image/png")}) as origin:
        frame = {"type": "image_url", "frame_type": "first_frame", "image_url": {"url": f"{origin}/frame.png"}}
        job = media_tenant.sdk.video_generation.generate(model="Ltx2_3_19B_Dist_INT8", prompt="the frame by url",
                                                         frame_images=cast(Any, [frame]))
    assert _poll(media_tenant, job.id).status == "completed"
    seen = media_workers.SEEN["the frame by url"]
    # Not the client's URL: the gateway's staged copy of what it fetched.
    assert seen["task"] == "img2video" and "/v1/files/" in seen["first_frame_image"]
    assert httpx.get(seen["first_frame_image"]).content == png


def test_a_failed_video_job_reads_failed_with_the_workers_message(media_tenant: Tenant) -> None:
    job = media_tenant.sdk.video_generation.generate(model="Ltx2_3_19B_Dist_INT8", prompt="fail this one")
    done = _poll(media_tenant, job.id)
    assert done.status == "failed" and done.error is not None and "cannot film that" in done.error
    content = media_tenant.http.get(f"/api/v1/videos/{job.id}/content")
    assert content.status_code == 409, content.text


def test_another_keys_video_job_is_not_found(media_tenant: Tenant, media_twin: Tenant) -> None:
    job = media_tenant.sdk.video_generation.generate(model="Ltx2_3_19B_Dist_INT8", prompt="private fox")
    for path in (f"/api/v1/videos/{job.id}", f"/api/v1/videos/{job.id}/content"):
        assert media_twin.http.get(path).status_code == 404
    _poll(media_tenant, job.id)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "Ltx2_3_19B_Dist_INT8"}, "prompt"),
        ({"model": "Ltx2_3_19B_Dist_INT8", "prompt": "x", "duration": 30}, "duration"),  # above 241 frames
        ({"model": "Ltx2_3_19B_Dist_INT8", "prompt": "x", "resolution": "4K"}, "resolution"),
        ({"model": "Ltx2_3_19B_Dist_INT8", "prompt": "x", "size": "big"}, "size"),
        ({"model": "Ltx2_3_19B_Dist_INT8", "prompt": "x", "resolution": "999p"}, "resolution"),
        ({"model": "Ltx2_3_19B_Dist_INT8", "prompt": "x", "callback_url": "https://example.com"}, "callback_url"),
        ({"model": "Ltx2_3_19B_Dist_INT8", "prompt": "x", "frame_images": [
            {"type": "image_url", "frame_type": "first_frame", "image_url": {"url": "http://10.0.0.1/y.png"}}]},
         "frame_images.0.image_url.url"),
        ({"model": "Ltx2_3_19B_Dist_INT8", "prompt": "x", "frame_images": [
            {"type": "image_url", "frame_type": "first_frame", "image_url": {"url": "aGVsbG8="}}]},
         "frame_images"),
    ],
)
def test_bad_video_requests_are_400s_naming_the_field(
    media_tenant: Tenant, body: dict[str, Any], param: str
) -> None:
    response = media_tenant.http.post("/api/v1/videos", json=body)
    assert response.status_code == 400, response.text
    assert error_param(response) == param
    assert media_tenant.spent() == 0


def test_an_unknown_video_job_is_a_404(media_tenant: Tenant) -> None:
    assert media_tenant.http.get("/api/v1/videos/no-such-job").status_code == 404


def test_video_models_list_what_the_video_route_accepts(media_tenant: Tenant) -> None:
    listed = {model.id: model for model in media_tenant.sdk.video_generation.list_videos_models().data}
    assert set(listed) == {"Ltxv_13B_0_9_8_Distilled_FP8", "Ltx2_19B_Dist_FP8", "Ltx2_3_19B_Dist_INT8"}
    ltx = listed["Ltx2_3_19B_Dist_INT8"]
    # 9..241 frames at 24 fps: 1 to 10 seconds; sides 256..1920 x 256..1088 on a 32-pixel grid.
    assert ltx.supported_durations == list(range(1, 11))
    assert ltx.supported_resolutions == ["360p", "480p", "720p", "768p", "1080p", "1K"]
    assert ltx.supported_frame_images == ["first_frame", "last_frame"]
    assert ltx.supported_aspect_ratios is not None and "16:9" in ltx.supported_aspect_ratios
    # Each listed duration and resolution is accepted by the route (checked before any job starts).
    for duration in (1, 10):
        response = media_tenant.http.post("/api/v1/videos", json={
            "model": "Ltx2_3_19B_Dist_INT8", "prompt": f"listed {duration}", "duration": duration,
            "resolution": "1080p"})
        assert response.status_code == 202, response.text
        _poll(media_tenant, response.json()["id"])
