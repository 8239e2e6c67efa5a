-- Settle a job's hold once (app/billing/ledger.py): charge what it cost, give back the rest.
-- KEYS: the balance, the job's hold, the key's ledger stream, the key's pending holds (one
-- hash tag: the key id). ARGV: the charge (micro-USD, already capped by the caller), ledger
-- TTL (ms), the hold id, then the entry's field/value pairs. The hold's existence is the
-- claim: a second settle, from any replica, finds none and changes nothing.
-- Returns {1, balance, refunded} or {0, balance, 0}.
redis.call('ZREM', KEYS[4], ARGV[3])
local held = redis.call('GET', KEYS[2])
local balance = tonumber(redis.call('GET', KEYS[1]) or '0')
if not held then return {0, balance, 0} end
local charge = tonumber(ARGV[1])
local refunded = tonumber(held) - charge
balance = redis.call('INCRBY', KEYS[1], refunded)
redis.call('DEL', KEYS[2])
local kind = 'settle'
if charge == 0 then kind = 'refund' end
local t = redis.call('TIME')
local oldest = tonumber(t[1]) * 1000 - tonumber(ARGV[2])
redis.call('XADD', KEYS[3], 'MINID', '~', tostring(oldest), '*', 'kind', kind, 'amount', ARGV[1],
  'refunded', tostring(refunded), 'balance', tostring(balance), unpack(ARGV, 4))
return {1, balance, refunded}
