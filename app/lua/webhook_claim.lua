-- Claim due deliveries under a lease; hold those of paused keys (app/webhooks/storage.py).
-- KEYS: due, inflight. ARGV: limit, lease_s, token, delivery prefix, breaker prefix, held prefix.
local _t = redis.call('TIME')
local now = tonumber(_t[1]) + tonumber(_t[2]) / 1000000
local limit = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZADD', KEYS[1], now, id)
  redis.call('HDEL', ARGV[4] .. id, 'owner')
end
local claimed, held = {}, {}
local rounds = 0
while #claimed < limit and rounds < 20 do
  rounds = rounds + 1
  local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit - #claimed)
  if #ids == 0 then break end
  for _, id in ipairs(ids) do
    redis.call('ZREM', KEYS[1], id)
    local dk = ARGV[4] .. id
    local f = redis.call('HMGET', dk, 'key_id', 'url', 'event', 'body', 'attempt')
    if f[1] and f[2] and f[4] then
      if redis.call('HGET', ARGV[5] .. f[1], 'paused') == '1' then
        redis.call('SADD', ARGV[6] .. f[1], id)
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
