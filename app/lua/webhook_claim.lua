-- Claim deliveries under a lease; hold those of paused keys (app/webhooks/storage.py).
-- KEYS: due, inflight, then for each candidate: its delivery, its key's breaker, its key's held set.
-- ARGV: limit, lease_s, token, then for each candidate: its id, 'e' (lease ran out) or 'd' (due).
-- Every candidate is checked again here: another claimer may have taken it since it was read.
local _t = redis.call('TIME')
local now = tonumber(_t[1]) + tonumber(_t[2]) / 1000000
local limit = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
local claimed, held = {}, {}
local count = (#ARGV - 3) / 2
for i = 1, count do
  local id, kind = ARGV[2 + 2 * i], ARGV[3 + 2 * i]
  local dk, bk, hk = KEYS[3 * i], KEYS[3 * i + 1], KEYS[3 * i + 2]
  local ready = false
  if kind == 'e' then
    local until_ = redis.call('ZSCORE', KEYS[2], id)
    if until_ and tonumber(until_) <= now then
      -- Its claimer died: back to due with the same attempt index.
      redis.call('ZREM', KEYS[2], id)
      redis.call('HDEL', dk, 'owner')
      redis.call('ZADD', KEYS[1], now, id)
    end
  end
  local at = redis.call('ZSCORE', KEYS[1], id)
  if at and tonumber(at) <= now and #claimed < limit then
    redis.call('ZREM', KEYS[1], id)
    local f = redis.call('HMGET', dk, 'key_id', 'url', 'event', 'body', 'attempt')
    if f[1] and f[2] and f[4] then
      if redis.call('HGET', bk, 'paused') == '1' then
        redis.call('SADD', hk, id)
        redis.call('HSET', dk, 'state', 'held')
        held[#held + 1] = {id, f[1]}
      else
        redis.call('ZADD', KEYS[2], now + lease, id)
        redis.call('HSET', dk, 'owner', ARGV[3], 'state', 'inflight')
        claimed[#claimed + 1] = {id, f[1], f[2], f[3] or '', f[4], f[5] or '0'}
      end
    end
  end
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {tostring(now), nxt[2] or '', claimed, held}
