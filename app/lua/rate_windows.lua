-- Check and count one request against all of a key's rate-limit windows (app/limits.py).
-- KEYS: one hash per window kind (one hash tag: the key id), holding the current window's
-- number (w) and count (n). ARGV: the limits, then the periods in seconds, in KEYS order.
-- Window numbers come from Redis' clock, so every replica agrees on the boundaries; a refused
-- request counts nowhere. Returns {allowed, seconds, microseconds, count per window}.
local t = redis.call('TIME')
local now = tonumber(t[1])
local n = #KEYS
local windows, counts, allowed = {}, {}, 1
for i = 1, n do
  windows[i] = tostring(math.floor(now / tonumber(ARGV[n + i])))
  local held = redis.call('HMGET', KEYS[i], 'w', 'n')
  counts[i] = 0
  if held[1] == windows[i] then counts[i] = tonumber(held[2] or '0') end
  if counts[i] >= tonumber(ARGV[i]) then allowed = 0 end
end
if allowed == 1 then
  for i = 1, n do
    counts[i] = counts[i] + 1
    redis.call('HSET', KEYS[i], 'w', windows[i], 'n', counts[i])
    redis.call('EXPIRE', KEYS[i], tonumber(ARGV[n + i]) + 60)
  end
end
local out = {allowed, t[1], t[2]}
for i = 1, n do out[#out + 1] = counts[i] end
return out
