-- Read which deliveries a claim may take (app/webhooks/storage.py); changes nothing.
-- KEYS: due, inflight. ARGV: limit.
-- Returns {due ids, ids whose claimer's lease ran out}; ``webhook_claim`` re-checks each.
local _t = redis.call('TIME')
local now = tonumber(_t[1]) + tonumber(_t[2]) / 1000000
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1000)
return {due, expired}
