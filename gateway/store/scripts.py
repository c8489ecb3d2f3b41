"""The Lua scripts of the Redis backends: each store call that is more than one command is one of these,
so it is one round trip and atomic on the server.

Each is idempotent for its owner — a command resent after its reply was lost (gateway.store.redis
sends a command once more when its connection broke) reads as what the first try did.
"""

from __future__ import annotations

from typing import Final

# KEYS[1] = lease key, KEYS[2..n] = keys to read; ARGV[1] = owner, ARGV[2] = lease in milliseconds.
# Returns {1 when the lease is ours (taken now, or by this owner's earlier try) else 0, each key's value
# (nil when absent)}.
READ_CLAIM_LUA: Final = """
local holder = redis.call('GET', KEYS[1])
local leased = 0
if holder == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    leased = 1
elseif not holder then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    leased = 1
end
local reply = {leased}
for i = 2, #KEYS do
    reply[i] = redis.call('GET', KEYS[i])
end
return reply
"""

# KEYS[1] = key, KEYS[2] = lease key (optional); ARGV[1] = value, ARGV[2] = TTL in milliseconds,
# ARGV[3] = lease owner, ARGV[4] = channel ('' for none), ARGV[5] = message. Returns 0 when the lease is
# held by another owner (lost), else 1.
WRITE_LUA: Final = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local kept = 1
if KEYS[2] then
    local holder = redis.call('GET', KEYS[2])
    if holder == ARGV[3] then
        redis.call('DEL', KEYS[2])
    elseif holder then
        kept = 0
    end
end
if ARGV[4] ~= '' then redis.call('PUBLISH', ARGV[4], ARGV[5]) end
return kept
"""

# KEYS = keys; ARGV[1] = owner ('' for any value), ARGV[2] = channel ('' for none), ARGV[3] = message.
# Returns how many keys were removed.
DELETE_LUA: Final = """
local removed = 0
for i = 1, #KEYS do
    if ARGV[1] == '' or redis.call('GET', KEYS[i]) == ARGV[1] then
        removed = removed + redis.call('DEL', KEYS[i])
    end
end
if ARGV[2] ~= '' then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
return removed
"""

# KEYS[1] = lease key, ARGV[1] = owner, ARGV[2] = lease in milliseconds. Returns 1 when extended, else 0.
RENEW_LUA: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS[1] = bucket key, ARGV[1] = interval in ms, ARGV[2] = burst. GCRA on the server's own clock
# (TIME), so replicas with skewed clocks share one bucket fairly; the same arithmetic as
# gateway.resilience.gcra. Returns "0" when a slot was taken, else the milliseconds to wait, as a string
# so the fraction survives the reply conversion.
TAKE_RATE_SLOT_LUA: Final = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + tonumber(now_parts[2]) / 1000
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local allow_at = tat + interval - burst * interval
if allow_at > now then return tostring(allow_at - now) end
local new_tat = tat + interval
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil(new_tat - now) + 1000)
return '0'
"""
