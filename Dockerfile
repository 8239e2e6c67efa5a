# dryAPI gateway image: slim, non-root, no model dependencies (those live in handlers/*).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY handlers ./handlers
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DRYAPI_ROUTING=/etc/dryapi/routing.yaml \
    DRYAPI_LOG_FORMAT=json
RUN useradd --system --uid 10001 --home /nonexistent --shell /usr/sbin/nologin dryapi
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY routing.yaml /etc/dryapi/routing.yaml
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"
# DRYAPI_SIGNING_SECRET, REDIS_URL and RUNPOD_API_KEY come from the environment (see README).
CMD ["dryapi-gateway", "serve", "--host", "0.0.0.0", "--port", "8000"]
