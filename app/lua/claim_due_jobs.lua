-- Take the due jobs of both watcher lanes in one atomic step (app/jobs/watcher.py).
-- A taken job's score moves to the end of its lease, so no replica sees it as due again until
-- the taker reschedules it, or the lease runs out because the taker died.
-- KEYS: fast lane, sweep lane (one hash tag). ARGV: now, fast limit, sweep limit, lease seconds.
-- Returns {number of fast-lane jobs, ids (fast-lane ones first)}.
local now = tonumber(ARGV[1])
local lease_until = now + tonumber(ARGV[4])
local taken = {}
local fast = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(fast) do
  redis.call('ZADD', KEYS[1], lease_until, id)
  taken[#taken + 1] = id
end
local from_fast = #taken
local sweep_limit = tonumber(ARGV[3])
if sweep_limit > 0 then
  local swept = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, sweep_limit)
  for _, id in ipairs(swept) do
    redis.call('ZADD', KEYS[2], lease_until, id)
    -- A watched job is polled by the fast lane; its sweep waits.
    if not redis.call('ZSCORE', KEYS[1], id) then
      taken[#taken + 1] = id
    end
  end
end
return {from_fast, taken}
