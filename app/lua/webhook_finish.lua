-- Record an attempt's outcome (app/webhooks/storage.py).
-- KEYS: delivery, inflight, due, pending set, breaker.
-- ARGV: id, token, kind (delivered|retry|dead), delay, last_status, last_error, threshold, ttl, attempted.
local _t = redis.call('TIME')
local now = tonumber(_t[1]) + tonumber(_t[2]) / 1000000
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[2] or not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  return {-1, 0, 0}
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], 'owner')
local attempt = tonumber(redis.call('HGET', KEYS[1], 'attempt') or '0')
if ARGV[9] == '1' then
  redis.call('HSET', KEYS[1], 'attempts', attempt + 1, 'last_attempt_at', now,
             'last_status', ARGV[5], 'last_error', ARGV[6])
else
  redis.call('HSET', KEYS[1], 'last_error', ARGV[6])
end
local kind = ARGV[3]
if kind == 'delivered' then
  redis.call('HSET', KEYS[1], 'state', 'delivered', 'finished_at', now)
  redis.call('HDEL', KEYS[1], 'body', 'url')
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[8]))
  redis.call('SREM', KEYS[4], ARGV[1])
  redis.call('HSET', KEYS[5], 'failures', 0)
  return {0, 0, 0}
end
if kind == 'retry' then
  redis.call('HSET', KEYS[1], 'state', 'pending', 'attempt', attempt + 1)
  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[4]), ARGV[1])
  return {1, 0, 0}
end
redis.call('HSET', KEYS[1], 'state', 'dead', 'finished_at', now)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[8]))
redis.call('SREM', KEYS[4], ARGV[1])
local failures = redis.call('HINCRBY', KEYS[5], 'failures', 1)
local tripped = 0
if failures >= tonumber(ARGV[7]) and redis.call('HGET', KEYS[5], 'paused') ~= '1' then
  redis.call('HSET', KEYS[5], 'paused', '1', 'paused_at', now)
  tripped = 1
end
return {2, failures, tripped}
