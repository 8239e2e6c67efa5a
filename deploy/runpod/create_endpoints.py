"""Create a RunPod template and serverless endpoint for each bundled worker.

    RUNPOD_API_KEY=... python deploy/runpod/create_endpoints.py --image-prefix ghcr.io/acme/ chat embeddings
    python deploy/runpod/create_endpoints.py --dry-run images      # print the request bodies only

Reads ``deploy/runpod/<surface>.json`` (RunPod REST v1 bodies), sets the image, creates the
template, then the endpoint with that template's id, and prints the environment variable
the gateway's routing.yaml reads for each endpoint id.
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
SURFACES = ("chat", "images", "transcribe", "embeddings")
ENV_NAMES = {
    "chat": "RUNPOD_CHAT_ENDPOINT_ID",
    "images": "RUNPOD_IMAGES_ENDPOINT_ID",
    "transcribe": "RUNPOD_TRANSCRIBE_ENDPOINT_ID",
    "embeddings": "RUNPOD_EMBEDDINGS_ENDPOINT_ID",
}


def bodies(surface: str, image_prefix: str, tag: str | None, network_volume: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads((HERE / f"{surface}.json").read_text())
    template = dict(spec["template"])
    image = template["imageName"].removeprefix("REGISTRY/")
    if tag:
        image = image.rsplit(":", 1)[0] + f":{tag}"
    template["imageName"] = image_prefix + image
    endpoint = dict(spec["endpoint"])
    if network_volume:
        endpoint["networkVolumeId"] = network_volume
    else:
        endpoint.pop("networkVolumeId", None)
    return {"template": template, "endpoint": endpoint}


def create(client: httpx.Client, surface: str, spec: dict[str, Any]) -> str:
    template = client.post("/templates", json=spec["template"])
    template.raise_for_status()
    endpoint_body = spec["endpoint"] | {"templateId": template.json()["id"]}
    endpoint = client.post("/endpoints", json=endpoint_body)
    endpoint.raise_for_status()
    endpoint_id: str = endpoint.json()["id"]
    return endpoint_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("surfaces", nargs="*", default=list(SURFACES), choices=SURFACES)
    parser.add_argument("--image-prefix", default="", help="registry prefix, e.g. ghcr.io/acme/")
    parser.add_argument("--tag", help="image tag (default: the one in the JSON)")
    parser.add_argument("--network-volume", help="network volume id for model weights (HF_HOME)")
    parser.add_argument("--api-base", default=os.environ.get("RUNPOD_REST_BASE", "https://rest.runpod.io/v1"))
    parser.add_argument("--dry-run", action="store_true", help="print the bodies; create nothing")
    args = parser.parse_args(argv)
    specs = {s: bodies(s, args.image_prefix, args.tag, args.network_volume) for s in args.surfaces}
    if args.dry_run:
        print(json.dumps(specs, indent=2))
        return 0
    api_key = os.environ.get("RUNPOD_API_KEY")
    if not api_key:
        print("RUNPOD_API_KEY is required", file=sys.stderr)
        return 1
    headers = {"authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=args.api_base, headers=headers, timeout=60) as client:
        for surface, spec in specs.items():
            print(f"export {ENV_NAMES[surface]}={create(client, surface, spec)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
