-- Hold a job's quoted price from a key's balance (app/billing/ledger.py), or refuse it.
-- KEYS: the balance, the job's hold, the key's ledger stream (one hash tag: the key id).
-- ARGV: amount (micro-USD), initial balance for a key never billed before, ledger TTL (ms),
-- then the entry's field/value pairs. One step, so parallel submits can never overdraw.
-- Returns {1, balance} held, {0, balance} not enough, {2, balance} this job already holds.
redis.call('SET', KEYS[1], ARGV[2], 'NX')
local balance = tonumber(redis.call('GET', KEYS[1]))
if redis.call('EXISTS', KEYS[2]) == 1 then return {2, balance} end
local amount = tonumber(ARGV[1])
if balance < amount then return {0, balance} end
balance = redis.call('DECRBY', KEYS[1], amount)
redis.call('SET', KEYS[2], amount)
local t = redis.call('TIME')
local oldest = tonumber(t[1]) * 1000 - tonumber(ARGV[3])
redis.call('XADD', KEYS[3], 'MINID', '~', tostring(oldest), '*', 'kind', 'hold', 'amount', ARGV[1],
  'balance', tostring(balance), unpack(ARGV, 4))
return {1, balance}
