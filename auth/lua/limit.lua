-- One atomic admission decision: token bucket and calendar quota, on the Redis clock.
--
-- Mirrors auth/token_bucket.py `decide` (the reference, unit-tested there); Python turns
-- the returned state into headers with `decision_after`, so only the state changes live here.
--
-- KEYS[1] bucket hash {tokens, ts}     absent = full bucket; expires once it would be full
-- KEYS[2] quota hash  {period, used}   a different period tag means a new, empty period
-- KEYS[3] usage hash  {rate_limited,…} lifetime counters; a long TTL, renewed on write
-- KEYS[4] receipt      ("record" only) present = that usage was recorded already
-- ARGV: mode ("admit" | "peek" | "record"), capacity, refill per second, quota limit,
--       quota period ("day" | "month"), units (admit: the request's cost in tokens and
--       quota, all or nothing; record: quota spent while the store was down), usage TTL s,
--       and for "record": total, success, failed, processing seconds, receipt TTL seconds
-- Returns: {allowed 0/1, reason ("" | "rate" | "quota"), tokens (string), now (string),
--           quota used, quota resets_at}

local bucket_key, quota_key, usage_key = KEYS[1], KEYS[2], KEYS[3]
local mode = ARGV[1]
local capacity = tonumber(ARGV[2])
local refill_per_second = tonumber(ARGV[3])
local quota_limit = tonumber(ARGV[4])
local period = ARGV[5]
local units = tonumber(ARGV[6])
local usage_ttl = tonumber(ARGV[7])
local EPSILON = 1e-9

-- The server's clock, so that every replica of the API agrees on time.
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000

-- Proleptic Gregorian date of a day number since 1970-01-01 (H. Hinnant's civil_from_days).
local function civil_from_days(days)
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
    - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local day = doy - math.floor((153 * mp + 2) / 5) + 1
  local month = mp < 10 and mp + 3 or mp - 9
  local year = yoe + era * 400 + (month <= 2 and 1 or 0)
  return year, month, day
end

local function days_from_civil(year, month, day)
  if month <= 2 then year = year - 1 end
  local era = math.floor(year / 400)
  local yoe = year - era * 400
  local mp = month > 2 and month - 3 or month + 9
  local doy = math.floor((153 * mp + 2) / 5) + day - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

local today = math.floor(now / 86400)
local year, month, day = civil_from_days(today)
local tag, resets_at
if period == 'day' then
  tag = string.format('d%04d%02d%02d', year, month, day)
  resets_at = (today + 1) * 86400
else
  tag = string.format('m%04d%02d', year, month)
  if month == 12 then year, month = year + 1, 1 else month = month + 1 end
  resets_at = days_from_civil(year, month, 1) * 86400
end

local used = 0
local stored_quota = redis.call('HMGET', quota_key, 'period', 'used')
if stored_quota[1] == tag then used = tonumber(stored_quota[2]) end

local function write_quota()
  redis.call('HSET', quota_key, 'period', tag, 'used', used)
  -- Kept a little past the period's end; a later period overwrites it anyway.
  redis.call('EXPIREAT', quota_key, resets_at + 3600)
end

if mode == 'record' then
  -- At most once per receipt: a write retried because its reply was lost changes nothing.
  if not redis.call('SET', KEYS[4], '1', 'NX', 'EX', tonumber(ARGV[12])) then
    return {0, '', '0', string.format('%.6f', now), used, resets_at}
  end
  redis.call('HINCRBY', usage_key, 'total', ARGV[8])
  redis.call('HINCRBY', usage_key, 'success', ARGV[9])
  redis.call('HINCRBY', usage_key, 'failed', ARGV[10])
  redis.call('HINCRBYFLOAT', usage_key, 'processing_seconds', ARGV[11])
  redis.call('EXPIRE', usage_key, usage_ttl)
  if units > 0 then
    -- Requests admitted while the store was unreachable count against the quota now.
    used = used + units
    write_quota()
  end
  return {1, '', '0', string.format('%.6f', now), used, resets_at}
end

local tokens = capacity
local stored_bucket = redis.call('HMGET', bucket_key, 'tokens', 'ts')
if stored_bucket[1] then
  local elapsed = math.max(0, now - tonumber(stored_bucket[2]))
  tokens = math.min(capacity, tonumber(stored_bucket[1]) + elapsed * refill_per_second)
end

-- A look (peek) asks whether one more request would pass.
local needed = math.max(units, 1)
local reason = ''
if quota_limit - used < needed then
  reason = 'quota'
elseif tokens + EPSILON < needed then
  reason = 'rate'
end

if mode == 'admit' then
  if reason == '' then
    tokens = math.max(0, tokens - units)
    used = used + units
    redis.call('HSET', bucket_key, 'tokens', string.format('%.17g', tokens),
      'ts', string.format('%.6f', now))
    -- Once the bucket would be full again, a missing key says the same thing.
    local full_in_ms = math.ceil((capacity - tokens) / refill_per_second * 1000)
    redis.call('PEXPIRE', bucket_key, full_in_ms + 1000)
    write_quota()
  else
    redis.call('HINCRBY', usage_key, 'rate_limited', 1)
    redis.call('EXPIRE', usage_key, usage_ttl)
  end
end

local allowed = 0
if reason == '' then allowed = 1 end
-- Floats would be truncated to integers on the way out of Lua: send them as strings.
return {allowed, reason, string.format('%.17g', tokens), string.format('%.6f', now), used,
  resets_at}
