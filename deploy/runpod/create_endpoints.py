"""Create a RunPod serverless endpoint for each bundled worker (RunPod REST API v2).

    RUNPOD_API_KEY=... python deploy/runpod/create_endpoints.py --image-prefix ghcr.io/acme/ chat embeddings
    python deploy/runpod/create_endpoints.py --dry-run images      # print the request bodies only

Reads ``deploy/runpod/<surface>.json``, whose ``endpoint`` is a v2 ``CreateEndpointRequest``
(container settings inline, so no template is created), sets the image and network volume,
POSTs it to ``/v2/serverless``, and prints the environment variable the gateway's
routing.yaml reads for each endpoint id. REST v1 (rest.runpod.io/v1: a template, then an
endpoint with its id) is retired; v2 is what RunPod documents now.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
# More endpoints of one worker: body name -> the handlers/ directory whose image it runs.
VARIANTS = {
    "images-edit": "images",
    "images-rmbg": "images",
    "images-upscale": "images",
    "speech-chatterbox": "speech",  # handlers/speech/Dockerfile.chatterbox
    "speech-qwen3": "speech",  # handlers/speech/Dockerfile.qwen3
    "chat-ocr": "chat",
}
SURFACES = ("chat", "images", "transcribe", "embeddings", "video", "speech", "music", *VARIANTS)
ENV_NAMES = {
    "chat": "RUNPOD_CHAT_ENDPOINT_ID",
    "images": "RUNPOD_IMAGES_ENDPOINT_ID",
    "transcribe": "RUNPOD_TRANSCRIBE_ENDPOINT_ID",
    "embeddings": "RUNPOD_EMBEDDINGS_ENDPOINT_ID",
    "video": "RUNPOD_VIDEO_LTXV_ENDPOINT_ID",  # routing.yaml's Ltxv_13B_0_9_8_Distilled_FP8
    "speech": "RUNPOD_SPEECH_ENDPOINT_ID",
    "music": "RUNPOD_MUSIC_ENDPOINT_ID",
    "images-edit": "RUNPOD_IMAGE_EDIT_ENDPOINT_ID",  # the names routing.yaml reads
    "images-rmbg": "RUNPOD_RMBG_ENDPOINT_ID",
    "images-upscale": "RUNPOD_UPSCALE_ENDPOINT_ID",
    "speech-chatterbox": "RUNPOD_SPEECH_CLONE_ENDPOINT_ID",  # routing.yaml's Chatterbox
    "speech-qwen3": "RUNPOD_SPEECH_DESIGN_ENDPOINT_ID",  # routing.yaml's Qwen3_TTS
    "chat-ocr": "RUNPOD_OCR_ENDPOINT_ID",  # routing.yaml's Nanonets_Ocr_S_F16 (img2txt)
}
DEFAULT_API_BASE = "https://api.runpod.io/v2"


def body(surface: str, image_prefix: str, tag: str | None, network_volume: str | None) -> dict[str, Any]:
    """The ``CreateEndpointRequest`` for ``surface`` with the image and volume filled in."""
    spec: dict[str, Any] = json.loads((HERE / f"{surface}.json").read_text())
    endpoint = dict(spec["endpoint"])
    image = endpoint["image"].removeprefix("REGISTRY/")
    if tag:
        image = image.rsplit(":", 1)[0] + f":{tag}"
    endpoint["image"] = image_prefix + image
    if network_volume:
        endpoint["networkVolumes"] = [network_volume]
    else:  # each new worker downloads the weights (or the image carries them)
        endpoint.pop("networkVolumes", None)
    return endpoint


def create(client: httpx.Client, endpoint: dict[str, Any]) -> str:
    response = client.post("/serverless", json=endpoint)
    if response.is_error:  # v2 answers RFC 9457 problems: title, status, detail, errors[]
        raise SystemExit(f"RunPod refused {endpoint['name']}: HTTP {response.status_code} {response.text[:500]}")
    endpoint_id: str = response.json()["id"]
    return endpoint_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("surfaces", nargs="*", help=f"any of {', '.join(SURFACES)} (default: all)")
    parser.add_argument("--image-prefix", default="", help="registry prefix, e.g. ghcr.io/acme/")
    parser.add_argument("--tag", help="image tag (default: the one in the JSON)")
    parser.add_argument("--network-volume", help="network volume id for model weights (mounted at /runpod-volume)")
    parser.add_argument("--api-base", default=os.environ.get("RUNPOD_REST_BASE", DEFAULT_API_BASE))
    parser.add_argument("--dry-run", action="store_true", help="print the bodies; create nothing")
    args = parser.parse_args(argv)
    surfaces = args.surfaces or list(SURFACES)
    unknown = sorted(set(surfaces) - set(SURFACES))
    if unknown:
        parser.error(f"unknown surface(s): {', '.join(unknown)}")
    bodies = {s: body(s, args.image_prefix, args.tag, args.network_volume) for s in surfaces}
    if args.dry_run:
        print(json.dumps(bodies, indent=2))
        return 0
    api_key = os.environ.get("RUNPOD_API_KEY")
    if not api_key:
        print("RUNPOD_API_KEY is required", file=sys.stderr)
        return 1
    headers = {"authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=args.api_base, headers=headers, timeout=60) as client:
        for surface, endpoint in bodies.items():
            print(f"export {ENV_NAMES[surface]}={create(client, endpoint)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
