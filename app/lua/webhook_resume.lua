-- Close a key's breaker and make the given held deliveries due (app/webhooks/storage.py).
-- KEYS: breaker, held set, due, then the delivery of each id. ARGV: the held ids.
-- Returns {1 if the breaker was open, deliveries still held (taken meanwhile: resume again)}.
local _t = redis.call('TIME')
local now = tonumber(_t[1]) + tonumber(_t[2]) / 1000000
local was = redis.call('HGET', KEYS[1], 'paused') == '1'
redis.call('HSET', KEYS[1], 'paused', '0', 'failures', 0)
for i, id in ipairs(ARGV) do
  local dk = KEYS[3 + i]
  if redis.call('HGET', dk, 'state') == 'held' then
    redis.call('HSET', dk, 'state', 'pending')
    redis.call('ZADD', KEYS[3], now, id)
  end
  redis.call('SREM', KEYS[2], id)
end
local open = 0
if was then open = 1 end
return {open, redis.call('SCARD', KEYS[2])}
