-- Hold a job's quoted price from a key's balance (app/billing/ledger.py), or refuse it.
-- KEYS: the balance, the job's hold, the key's ledger stream, the key's pending holds (one
-- hash tag: the key id). ARGV: amount (micro-USD), initial balance for a key never billed
-- before, ledger TTL (ms), the hold id, then the entry's field/value pairs. One step, so
-- parallel submits can never overdraw. A hold stays pending (scored by when it was made)
-- until its job is recorded or it settles; app/billing/reclaim.py refunds one left too long.
-- Returns {1, balance} held, {0, balance} not enough, {2, balance} this job already holds.
redis.call('SET', KEYS[1], ARGV[2], 'NX')
local balance = tonumber(redis.call('GET', KEYS[1]))
if redis.call('EXISTS', KEYS[2]) == 1 then return {2, balance} end
local amount = tonumber(ARGV[1])
if balance < amount then return {0, balance} end
balance = redis.call('DECRBY', KEYS[1], amount)
redis.call('SET', KEYS[2], amount)
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[4], now_ms, ARGV[4])
redis.call('XADD', KEYS[3], 'MINID', '~', tostring(now_ms - tonumber(ARGV[3])), '*', 'kind', 'hold',
  'amount', ARGV[1], 'balance', tostring(balance), unpack(ARGV, 5))
return {1, balance}
