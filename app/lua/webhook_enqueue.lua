-- A new delivery, due after a delay (app/webhooks/storage.py).
-- KEYS: delivery, due, pending set. ARGV: id, key_id, url, event, body, delay.
local _t = redis.call('TIME')
local now = tonumber(_t[1]) + tonumber(_t[2]) / 1000000
redis.call('HSET', KEYS[1], 'key_id', ARGV[2], 'url', ARGV[3], 'event', ARGV[4], 'body', ARGV[5],
           'attempt', 0, 'attempts', 0, 'state', 'pending', 'created', now)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[6]), ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
return 1
