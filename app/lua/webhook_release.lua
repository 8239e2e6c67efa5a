-- Give a claim back without using up an attempt (app/webhooks/storage.py).
-- KEYS: delivery, inflight, due. ARGV: id, token, delay.
local _t = redis.call('TIME')
local now = tonumber(_t[1]) + tonumber(_t[2]) / 1000000
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[2] or not redis.call('ZREM', KEYS[2], ARGV[1]) then
  return 0
end
redis.call('HDEL', KEYS[1], 'owner')
redis.call('HSET', KEYS[1], 'state', 'pending')
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), ARGV[1])
return 1
