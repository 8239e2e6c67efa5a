-- Take a key's holds that no job was attached to in time (app/billing/reclaim.py), atomically.
-- KEYS: the key's pending holds (hold id scored by when it was made, in ms).
-- ARGV: the grace period (ms), how many to take, the lease (ms). A taken hold's score moves
-- forward by the lease: that is the claim, so no other replica takes it again unless the
-- taker died before refunding it (the refund itself happens once either way).
-- Returns the hold ids taken.
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local taken = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms - tonumber(ARGV[1]),
  'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(taken) do
  redis.call('ZADD', KEYS[1], 'XX', now_ms - tonumber(ARGV[1]) + tonumber(ARGV[3]), id)
end
return taken
