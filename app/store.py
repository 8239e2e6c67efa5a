"""The Redis connection: a real server for ``redis://``, an in-process fake for ``memory://``."""

from __future__ import annotations

import redis.asyncio as aioredis

MEMORY_SCHEME = "memory://"
MAX_CONNECTIONS = 128


def is_memory_url(url: str) -> bool:
    return url.startswith(MEMORY_SCHEME)


def create_redis(url: str) -> aioredis.Redis:
    """One client (with its own pool) per process; bytes in, bytes out."""
    if is_memory_url(url):
        import fakeredis  # only the local one-command start needs it

        return fakeredis.FakeAsyncRedis(decode_responses=False)
    # A bounded pool that makes callers wait for a free connection (up to 5 s) instead of
    # failing: thousands of WebSockets opening at once must queue, not error.
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=5.0,
        decode_responses=False,
        socket_timeout=5.0,
        socket_connect_timeout=2.0,
        health_check_interval=30,
    )
    return aioredis.Redis(connection_pool=pool)


class Keys:
    """Every Redis key and channel the gateway uses, each with its own name, under one prefix so
    tests and tenants can share a server.

    Redis Cluster: a Lua script may only touch keys of one hash slot, so keys one script
    touches together share a hash tag (``{...}``): the two job lanes (``{jobs}``), a key's
    rate-limit windows (``{key_id}``), the webhook outbox (``{webhook}``).
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    # API keys ----------------------------------------------------------------------------

    def api_key(self, digest: str) -> str:
        return f"{self.prefix}apikey:{digest}"

    @property
    def api_key_index(self) -> str:
        return f"{self.prefix}apikeys"

    # jobs --------------------------------------------------------------------------------

    def job(self, job_id: str) -> str:
        """The job record (``app/jobs/records.py``)."""
        return f"{self.prefix}job:{job_id}"

    def job_result(self, job_id: str) -> str:
        """A finished job's client-facing body, kept for ``DRYAPI_RESULT_TTL_S``."""
        return f"{self.prefix}jobres:{job_id}"

    def job_final_claim(self, job_id: str) -> str:
        """Held by the one process that finalises the job."""
        return f"{self.prefix}jobfinal:{job_id}"

    def job_step_claim(self, job_id: str, status: str) -> str:
        """Held by the one process that announces the job's move to ``status``."""
        return f"{self.prefix}jobstep:{job_id}:{status}"

    def job_seen(self, job_id: str) -> str:
        """The poller's last status body for the job (a new watcher's first frame)."""
        return f"{self.prefix}jobseen:{job_id}"

    def job_progress(self, job_id: str) -> str:
        """The running job's last progress value (each new one is a realtime event once)."""
        return f"{self.prefix}jobprog:{job_id}"

    def job_watched(self, job_id: str) -> str:
        """Present while a WebSocket watches the job."""
        return f"{self.prefix}jobwatched:{job_id}"

    def job_events(self, job_id: str) -> str:
        """The pub/sub channel of the job's status frames."""
        return f"{self.prefix}jobev:{job_id}"

    @property
    def job_events_prefix(self) -> str:
        return f"{self.prefix}jobev:"

    def realtime_events(self, owner: str) -> str:
        """The pub/sub channel of an API key's realtime job events (``app/realtime``)."""
        return f"{self.realtime_events_prefix}{owner}"

    @property
    def realtime_events_prefix(self) -> str:
        return f"{self.prefix}rtev:"

    @property
    def sweep_lane(self) -> str:
        """Every followed job, scored by when its next sweep is due."""
        return f"{self.prefix}{{jobs}}:active"

    @property
    def fast_lane(self) -> str:
        """Jobs with a WebSocket watcher, scored by when their next fast poll is due."""
        return f"{self.prefix}{{jobs}}:watched"

    def idempotency(self, key_id: str, digest: str) -> str:
        return f"{self.prefix}idem:{key_id}:{digest}"

    # files, limits, usage, routing --------------------------------------------------------

    def file(self, file_id: str) -> str:
        return f"{self.prefix}file:{file_id}"

    def oauth_code(self, code: str) -> str:
        """An MCP connector's authorization code, until it is exchanged (``app/mcp/oauth.py``)."""
        return f"{self.prefix}oauthcode:{code}"

    def rate_window(self, key_id: str, scope: str, period: int) -> str:
        """A key's request counter for one window kind (a hash: window number, count)."""
        return f"{self.prefix}rl:{{{key_id}}}:{scope}:{period}"

    def usage(self, key_id: str, day: str) -> str:
        return f"{self.prefix}usage:{key_id}:{day}"

    def generation(self, key_id: str, generation_id: str) -> str:
        """A finished request's stats (``app/generations.py``), under the key that made it."""
        return f"{self.prefix}gen:{key_id}:{generation_id}"

    @property
    def routing_reload(self) -> str:
        """The pub/sub channel that tells every replica to reload routing.yaml."""
        return f"{self.prefix}routing:reload"

    # billing (``app/billing/ledger.py``): one hash tag per API key, so a key's balance, holds
    # and ledger are touched together by one script ------------------------------------------

    def balance(self, key_id: str) -> str:
        """A key's balance in integer micro-USD."""
        return f"{self.prefix}bal:{{{key_id}}}"

    def hold(self, key_id: str, job_id: str) -> str:
        """What a running job holds of its key's balance until it settles."""
        return f"{self.prefix}hold:{{{key_id}}}:{job_id}"

    def ledger(self, key_id: str) -> str:
        """A key's ledger: a stream of holds, settlements, refunds and top-ups."""
        return f"{self.prefix}ledger:{{{key_id}}}"

    def pending_holds(self, key_id: str) -> str:
        """A key's holds no job has been attached to yet, scored by when they were made
        (``app/billing/reclaim.py`` refunds the ones a dead gateway left behind)."""
        return f"{self.prefix}holds:{{{key_id}}}"

    # webhook outbox (``app/webhooks/storage.py``) -------------------------------------------

    def webhook_delivery(self, delivery_id: str) -> str:
        return f"{self.webhook_delivery_prefix}{delivery_id}"

    @property
    def webhook_delivery_prefix(self) -> str:
        return f"{self.prefix}{{webhook}}:d:"

    @property
    def webhook_due(self) -> str:
        return f"{self.prefix}{{webhook}}:due"

    @property
    def webhook_inflight(self) -> str:
        return f"{self.prefix}{{webhook}}:inflight"

    def webhook_pending(self, key_id: str) -> str:
        return f"{self.prefix}{{webhook}}:pending:{key_id}"

    def webhook_held(self, key_id: str) -> str:
        return f"{self.webhook_held_prefix}{key_id}"

    @property
    def webhook_held_prefix(self) -> str:
        return f"{self.prefix}{{webhook}}:held:"

    def webhook_breaker(self, key_id: str) -> str:
        return f"{self.webhook_breaker_prefix}{key_id}"

    @property
    def webhook_breaker_prefix(self) -> str:
        return f"{self.prefix}{{webhook}}:breaker:"

    # endpoint health (app/routing/health_sync.py) --------------------------------------------

    def health_lease(self, endpoint_id: str) -> str:
        """Held by the replica polling the endpoint's RunPod /health this interval."""
        return f"{self.prefix}health:lease:{endpoint_id}"

    def health_state(self, endpoint_id: str) -> str:
        """The endpoint's last /health answer (workers and jobs), JSON."""
        return f"{self.prefix}health:state:{endpoint_id}"

    def health_cool(self, endpoint_id: str) -> str:
        """Present while the endpoint cools after repeated failures; expires when it ends."""
        return f"{self.prefix}health:cool:{endpoint_id}"

    def health_outcomes(self, endpoint_id: str, bucket: int) -> str:
        """ok/failed counts of every replica's calls to the endpoint in one 10 s bucket."""
        return f"{self.prefix}health:outcomes:{endpoint_id}:{bucket}"
