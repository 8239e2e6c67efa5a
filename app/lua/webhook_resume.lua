-- Close a key's breaker and make its held deliveries due (app/webhooks/storage.py).
-- KEYS: breaker, held, due. ARGV: delivery prefix.
local _t = redis.call('TIME')
local now = tonumber(_t[1]) + tonumber(_t[2]) / 1000000
local was = redis.call('HGET', KEYS[1], 'paused') == '1'
redis.call('HSET', KEYS[1], 'paused', '0', 'failures', 0)
local ids = redis.call('SMEMBERS', KEYS[2])
for _, id in ipairs(ids) do
  local dk = ARGV[1] .. id
  if redis.call('HGET', dk, 'state') == 'held' then
    redis.call('HSET', dk, 'state', 'pending')
    redis.call('ZADD', KEYS[3], now, id)
  end
end
redis.call('DEL', KEYS[2])
if was then return 1 end
return 0
