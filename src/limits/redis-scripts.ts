/**
 * Lua for the Redis backend. Each request's check-and-consume is one script, so it is atomic across all
 * of the request's limits: every rule admits it or none is touched. The clock is Redis TIME, read inside
 * the script, so instances with skewed clocks agree on every window.
 *
 * A rate key is a hash holding the sliding log of sliding-log.ts:
 *   <slot> -> weight    slots are ceil(time / (window / SLOTS))
 *   s -> sum of weights, o -> oldest slot that may hold a weight, n -> newest slot
 * Live slots always lie within (n - SLOTS - 2, n], so eviction touches at most SLOTS + 2 fields. Each key
 * expires on its own once its newest slot has left the window.
 *
 * A quota key is a plain counter of the tokens used in one UTC day or month, created from the seed the
 * instance passes (the store's total) when Redis has none, and expiring an hour after its period.
 */

/**
 * KEYS: the rate keys, then the quota keys.
 * ARGV: nRates, nQuotas, SLOTS, then per rate rule (limit, windowMs, cost), then per quota (limit, cost, seed, endsAt).
 * Returns: { blockedType (0 none, 1 rate, 2 quota), blockedIndex (1-based), retryMs, never (0/1), now,
 *            then remaining, resetMs per rate rule, then used per quota }.
 */
export const CONSUME_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nr = tonumber(ARGV[1])
local nq = tonumber(ARGV[2])
local SLOTS = tonumber(ARGV[3])
local btype, bindex, bretry, bnever = 0, 0, 0, 0
local st = {}
local a = 4
for i = 1, nr do
  local key = KEYS[i]
  local limit = tonumber(ARGV[a]); local win = tonumber(ARGV[a + 1]); local cost = tonumber(ARGV[a + 2])
  a = a + 3
  local res = win / SLOTS
  local cutoff = math.floor((now - win) / res)
  local h = redis.call('HMGET', key, 's', 'o', 'n')
  local sum = tonumber(h[1]) or 0
  local o = tonumber(h[2])
  local newest = tonumber(h[3])
  if newest and newest <= cutoff then
    redis.call('DEL', key)
    sum = 0; o = nil; newest = nil
  elseif newest and o and o <= cutoff then
    local fields = {}
    for s = math.max(o, newest - SLOTS - 2), cutoff do fields[#fields + 1] = s end
    if #fields > 0 then
      local ws = redis.call('HMGET', key, unpack(fields))
      for j = 1, #ws do if ws[j] then sum = sum - tonumber(ws[j]) end end
      redis.call('HDEL', key, unpack(fields))
    end
    if sum < 0 then sum = 0 end
    o = cutoff + 1
    redis.call('HSET', key, 's', sum, 'o', o)
  end
  st[i] = { sum, o, newest, res, win, limit, cost }
  if sum + cost > limit then
    local retry
    local never = 0
    if cost > limit then
      retry = win; never = 1
    else
      retry = win
      local need = sum + cost - limit
      local first = math.max(o, newest - SLOTS - 2)
      local fields = {}
      for s = first, newest do fields[#fields + 1] = s end
      local ws = redis.call('HMGET', key, unpack(fields))
      local freed = 0
      for j = 1, #ws do
        if ws[j] then freed = freed + tonumber(ws[j]) end
        if freed >= need then retry = (first + j - 1) * res + win - now; break end
      end
    end
    if btype == 0 or (btype == 1 and retry > bretry) then btype = 1; bindex = i; bretry = retry; bnever = never end
  end
end
local qused = {}
for k = 1, nq do
  local key = KEYS[nr + k]
  local limit = tonumber(ARGV[a]); local cost = tonumber(ARGV[a + 1]); local seed = tonumber(ARGV[a + 2]); local ends = tonumber(ARGV[a + 3])
  a = a + 4
  local used = tonumber(redis.call('GET', key))
  if not used then
    used = seed
    redis.call('SET', key, seed, 'PX', math.max(1000, ends - now + 3600000))
  end
  qused[k] = { used, limit, cost }
  if used + cost > limit then
    local retry = math.max(0, ends - now)
    local never = 0
    if cost > limit then never = 1 end
    if btype ~= 2 or retry > bretry then btype = 2; bindex = k; bretry = retry; bnever = never end
  end
end
local out = { btype, bindex, bretry, bnever, now }
if btype == 0 then
  for i = 1, nr do
    local key = KEYS[i]
    local s = st[i]
    local res, win, cost = s[4], s[5], s[7]
    local slot = math.ceil(now / res)
    local sum = s[1] + cost
    if cost > 0 then
      redis.call('HINCRBY', key, slot, cost)
      if s[2] then redis.call('HSET', key, 's', sum, 'n', slot)
      else redis.call('HSET', key, 's', sum, 'n', slot, 'o', slot) end
      redis.call('PEXPIRE', key, slot * res + win - now + 1000)
    end
    local reset = 0
    if cost > 0 then reset = slot * res + win - now elseif s[3] then reset = math.max(0, s[3] * res + win - now) end
    out[#out + 1] = math.max(0, s[6] - sum)
    out[#out + 1] = reset
  end
  for k = 1, nq do
    local q = qused[k]
    if q[3] > 0 then q[1] = redis.call('INCRBY', KEYS[nr + k], q[3]) end
    out[#out + 1] = q[1]
  end
else
  for i = 1, nr do
    local s = st[i]
    local reset = 0
    if s[3] then reset = math.max(0, s[3] * s[4] + s[5] - now) end
    out[#out + 1] = math.max(0, s[6] - s[1])
    out[#out + 1] = reset
  end
  for k = 1, nq do out[#out + 1] = qused[k][1] end
end
return out
`

/**
 * Settles finished requests: moves each estimate to the actual usage. Many requests' corrections go in
 * one call (the backend batches them).
 * KEYS: rate keys, then quota keys. ARGV: SLOTS, nRates, nQuotas, then per rate (at, windowMs, delta), then per quota (delta).
 */
export const SETTLE_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local SLOTS = tonumber(ARGV[1])
local nr = tonumber(ARGV[2])
local nq = tonumber(ARGV[3])
local a = 4
for i = 1, nr do
  local key = KEYS[i]
  local at = tonumber(ARGV[a]); local win = tonumber(ARGV[a + 1]); local delta = tonumber(ARGV[a + 2])
  a = a + 3
  local res = win / SLOTS
  local slot = math.ceil(at / res)
  local cutoff = math.floor((now - win) / res)
  if slot > cutoff and redis.call('HEXISTS', key, slot) == 1 then
    local w = redis.call('HINCRBY', key, slot, delta)
    local applied = delta
    if w < 0 then
      redis.call('HSET', key, slot, 0)
      applied = delta - w
    end
    redis.call('HINCRBY', key, 's', applied)
  elseif delta > 0 then
    -- the admitted slot has left the window (a request longer than the window): count the excess now
    local s = math.ceil(now / res)
    redis.call('HINCRBY', key, s, delta)
    redis.call('HINCRBY', key, 's', delta)
    local n = tonumber(redis.call('HGET', key, 'n'))
    if not n or s > n then redis.call('HSET', key, 'n', s) end
    redis.call('HSETNX', key, 'o', s)
    redis.call('PEXPIRE', key, s * res + win - now + 1000)
  end
end
for k = 1, nq do
  local key = KEYS[nr + k]
  local delta = tonumber(ARGV[a]); a = a + 1
  if redis.call('EXISTS', key) == 1 then
    local v = redis.call('INCRBY', key, delta)
    if v < 0 then redis.call('SET', key, 0, 'KEEPTTL') end
  end
end
return 1
`

/** SharedState.incr: INCRBY, and a TTL for a new counter. KEYS: key. ARGV: by, ttlMs. */
export const INCR_LUA = `
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return v
`
