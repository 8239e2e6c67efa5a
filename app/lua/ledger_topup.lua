-- Add money to a key's balance (app/billing/ledger.py) and record it.
-- KEYS: the balance, the key's ledger stream (one hash tag: the key id).
-- ARGV: amount (micro-USD), initial balance for a key never billed before, ledger TTL (ms),
-- then the entry's field/value pairs. Returns the new balance.
redis.call('SET', KEYS[1], ARGV[2], 'NX')
local balance = redis.call('INCRBY', KEYS[1], tonumber(ARGV[1]))
local t = redis.call('TIME')
local oldest = tonumber(t[1]) * 1000 - tonumber(ARGV[3])
redis.call('XADD', KEYS[2], 'MINID', '~', tostring(oldest), '*', 'kind', 'topup', 'amount', ARGV[1],
  'balance', tostring(balance), unpack(ARGV, 4))
return balance
