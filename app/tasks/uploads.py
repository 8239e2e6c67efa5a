"""Checking a task's uploaded files and staging them for the worker.

Each file is checked against its field's rule (count, size, format sniffed from its bytes),
then staged as a signed ``/v1/files`` URL the worker fetches: RunPod caps job payloads, and
the worker's media helper applies the same limits again on its side.
"""

from __future__ import annotations

from app.files import FileStore
from app.tasks.media_sniff import image_size, sniff
from app.tasks.spec import IMAGE_FORMATS, TaskSpec, Upload
from app.tasks.validation import FieldErrors

CONTENT_TYPES = {
    "jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif", "bmp": "image/bmp", "webp": "image/webp",
    "mp3": "audio/mpeg", "wav": "audio/wav", "flac": "audio/flac", "ogg": "audio/ogg", "aac": "audio/aac",
    "m4a": "audio/mp4", "mp4": "video/mp4", "mov": "video/quicktime", "webm": "video/webm", "avi": "video/x-msvideo",
    "mpeg": "video/mpeg", "wmv": "video/x-ms-wmv",
}


def check_files(spec: TaskSpec, files: dict[str, list[bytes]]) -> tuple[dict[str, list[Upload]], FieldErrors]:
    """What each accepted file is, and an error per field whose files break its rule."""
    uploads: dict[str, list[Upload]] = {}
    errors: FieldErrors = []
    for rule in spec.files:
        parts = files.get(rule.name, [])
        if not parts:
            if rule.required:
                errors.append((rule.name, f"The {rule.name} field is required."))
            continue
        if len(parts) > rule.many:
            errors.append((rule.name, f"The {rule.name} field takes at most {rule.many} file(s)."))
            continue
        accepted: list[Upload] = []
        for data in parts:
            kind = sniff(data[:64])
            if len(data) > rule.max_bytes:
                errors.append((rule.name, f"The {rule.name} may not be larger than {rule.max_bytes // 1048576} MB."))
            elif not data or kind not in rule.formats:
                allowed = ", ".join(sorted(rule.formats))
                errors.append((rule.name, f"The {rule.name} must be a file of type: {allowed}."))
            else:
                dimensions = image_size(data) if kind in IMAGE_FORMATS else None
                accepted.append(Upload(kind, len(data), dimensions))
                continue
            break
        else:
            uploads[rule.name] = accepted
    return uploads, errors


async def stage(
    store: FileStore, files: dict[str, list[bytes]], uploads: dict[str, list[Upload]]
) -> dict[str, list[str]]:
    """Signed URLs for every accepted file, by field."""
    urls: dict[str, list[str]] = {}
    for name, accepted in uploads.items():
        parts = zip(files[name], accepted, strict=True)
        urls[name] = [await store.put(data, CONTENT_TYPES[upload.format]) for data, upload in parts]
    return urls
