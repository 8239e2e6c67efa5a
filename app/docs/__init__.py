"""OpenAPI documentation for the routes: descriptions, request bodies and seed-shaped examples.

Route decorators take what they need from here (``responses=``, ``operation_class=``,
``description=``), so handlers stay readable and the examples live in one place.
"""

from app.docs.bodies import (
    ASYNC_NOTE,
    CHAT_OPERATION,
    EMBEDDINGS_OPERATION,
    IMAGES_OPERATION,
    TRANSCRIBE_OPERATION,
    body_operation,
)
from app.docs.responses import (
    BAD_REQUEST,
    CHAT_RESPONSES,
    DOWNLOAD_RESPONSES,
    EMBEDDINGS_RESPONSES,
    ERRORS,
    FILE_RESPONSES,
    FORBIDDEN,
    IMAGES_RESPONSES,
    JOB_RESPONSES,
    MODEL_RESPONSES,
    NOT_FOUND_JOB,
    PROXY_RESPONSES,
    RATE_LIMITED,
    RESULT_RESPONSES,
    TRANSCRIBE_RESPONSES,
    UNAUTHORIZED,
    EnqueueDoc,
    JobStatusDoc,
)

__all__ = [
    "ASYNC_NOTE",
    "BAD_REQUEST",
    "CHAT_OPERATION",
    "CHAT_RESPONSES",
    "DOWNLOAD_RESPONSES",
    "EMBEDDINGS_OPERATION",
    "EMBEDDINGS_RESPONSES",
    "ERRORS",
    "FILE_RESPONSES",
    "FORBIDDEN",
    "IMAGES_OPERATION",
    "IMAGES_RESPONSES",
    "JOB_RESPONSES",
    "MODEL_RESPONSES",
    "NOT_FOUND_JOB",
    "PROXY_RESPONSES",
    "RATE_LIMITED",
    "RESULT_RESPONSES",
    "TRANSCRIBE_OPERATION",
    "TRANSCRIBE_RESPONSES",
    "UNAUTHORIZED",
    "EnqueueDoc",
    "JobStatusDoc",
    "body_operation",
]
