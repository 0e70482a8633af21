-- Every state change of the Redis job store, each one atomic, on the Redis clock.
--
-- KEYS[1] is the base of every key (e.g. "iopaint:jobs:{jobs}:"); all of them share the
-- {jobs} hash tag, so in a Redis Cluster they live in one slot, as one script needs.
--   job:ID        hash  the job's record (jobs/redis_store.py lists the fields)
--   input:ID      hash  image, mask, watermark (absent: none); deleted when the job ends
--   result:ID     string the PNG, with the result's TTL
--   queue         zset  queued job ids, score = when ready (microseconds)
--   leases        zset  running job ids, score = when the lease ends (microseconds)
--   unfinished    hash  owner id -> queued + running jobs; field "*" = everyone's
--   batch:ID      hash  the batch's record; `remaining` counts its unfinished jobs
--   idempotency:… hash  fingerprint, target (absent while the submission is under way)
--   effects       zset  effect ids ("usage:job_…", …), score = when due (microseconds)
--   effect-attempts hash effect id -> attempts made
-- ARGV[1] names the operation; the rest are its arguments (see each function).

local base = KEYS[1]
local op = ARGV[1]
local ALL = '*'

local clock = redis.call('TIME')
local now_us = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local now = now_us / 1000000
local function seconds(value) return string.format('%.6f', value) end

local function job_key(id) return base .. 'job:' .. id end

local function add_unfinished(owner, count)
  local mine = redis.call('HINCRBY', base .. 'unfinished', owner, count)
  if mine <= 0 then redis.call('HDEL', base .. 'unfinished', owner) end
  redis.call('HINCRBY', base .. 'unfinished', ALL, count)
end

local function owe(effect_id)
  redis.call('ZADD', base .. 'effects', 'NX', now_us, effect_id)
end

-- The job ends (status succeeded, failed or canceled): input gone, result kept, effects
-- owed, its batch told. `png` is false unless it succeeded.
local function finish(id, status, error_json, headers_json, processing, png, result_ms, record_ms)
  local key = job_key(id)
  local owner, callback, batch_id = unpack(redis.call('HMGET', key, 'owner_id', 'callback_url', 'batch_id'))
  redis.call('HSET', key, 'status', status, 'finished_at', seconds(now))
  redis.call('HDEL', key, 'worker')
  if error_json ~= '' then redis.call('HSET', key, 'error', error_json) end
  if headers_json ~= '' then redis.call('HSET', key, 'result_headers', headers_json) end
  if processing ~= '' then redis.call('HSET', key, 'processing_seconds', processing) end
  if png then
    redis.call('SET', base .. 'result:' .. id, png, 'PX', result_ms)
    redis.call('HSET', key, 'result_expires_at', seconds(now + result_ms / 1000))
  end
  redis.call('PEXPIRE', key, record_ms)
  redis.call('DEL', base .. 'input:' .. id)
  redis.call('ZREM', base .. 'queue', id)
  redis.call('ZREM', base .. 'leases', id)
  add_unfinished(owner, -1)
  owe('usage:' .. id)
  if callback and status ~= 'canceled' then owe('job-webhook:' .. id) end
  if batch_id then
    local batch = base .. 'batch:' .. batch_id
    if redis.call('HINCRBY', batch, 'remaining', -1) == 0 then
      redis.call('HSET', batch, 'finished_at', seconds(now))
      redis.call('PEXPIRE', batch, record_ms)
      if redis.call('HEXISTS', batch, 'callback_url') == 1 then owe('batch-webhook:' .. batch_id) end
    end
  end
end

local function holds(id, token)
  local status, attempts = unpack(redis.call('HMGET', job_key(id), 'status', 'attempts'))
  return status == 'running' and attempts == token
end

-- submit: owner, count, cap per account, cap total, idempotency key name (or ""), target,
-- idempotency TTL ms, batch fields JSON (or ""), then per job: id, fields JSON, image,
-- has mask ("1"/"0"), mask, has watermark ("1"/"0"), watermark. Returns {"ok"} or
-- {"full", "account"|"total"}.
if op == 'submit' then
  local owner, count = ARGV[2], tonumber(ARGV[3])
  local mine = tonumber(redis.call('HGET', base .. 'unfinished', owner) or '0')
  if mine + count > tonumber(ARGV[4]) then return {'full', 'account'} end
  local everyone = tonumber(redis.call('HGET', base .. 'unfinished', ALL) or '0')
  if everyone + count > tonumber(ARGV[5]) then return {'full', 'total'} end
  local at = 10
  for position = 0, count - 1 do
    local id, fields = ARGV[at], cjson.decode(ARGV[at + 1])
    local key = job_key(id)
    for name, value in pairs(fields) do redis.call('HSET', key, name, value) end
    redis.call('HSET', key, 'status', 'queued', 'attempts', '0')
    redis.call('HSET', base .. 'input:' .. id, 'image', ARGV[at + 2])
    if ARGV[at + 3] == '1' then redis.call('HSET', base .. 'input:' .. id, 'mask', ARGV[at + 4]) end
    if ARGV[at + 5] == '1' then
      redis.call('HSET', base .. 'input:' .. id, 'watermark', ARGV[at + 6])
    end
    -- One microsecond apart: the queue keeps the submission's order.
    redis.call('ZADD', base .. 'queue', now_us + position, id)
    at = at + 7
  end
  if ARGV[9] ~= '' then
    local batch = cjson.decode(ARGV[9])
    local key = base .. 'batch:' .. batch.id
    for name, value in pairs(batch.fields) do redis.call('HSET', key, name, value) end
    redis.call('HSET', key, 'remaining', count)
  end
  add_unfinished(owner, count)
  if ARGV[6] ~= '' then
    redis.call('HSET', ARGV[6], 'target', ARGV[7])
    redis.call('PEXPIRE', ARGV[6], ARGV[8])
  end
  return {'ok'}
end

-- claim: worker, lease ms. A lapsed lease first (reclaim), else the oldest ready job.
-- Returns {id, token, image, has mask, mask, has watermark, watermark} or false.
if op == 'claim' then
  local id = redis.call('ZRANGEBYSCORE', base .. 'leases', '-inf', now_us, 'LIMIT', 0, 1)[1]
  if not id then
    id = redis.call('ZRANGEBYSCORE', base .. 'queue', '-inf', now_us, 'LIMIT', 0, 1)[1]
    if not id then return false end
    redis.call('ZREM', base .. 'queue', id)
  end
  local key = job_key(id)
  local token = redis.call('HINCRBY', key, 'attempts', 1)
  redis.call('HSET', key, 'status', 'running', 'worker', ARGV[2])
  redis.call('HSETNX', key, 'started_at', seconds(now))
  redis.call('ZADD', base .. 'leases', now_us + tonumber(ARGV[3]) * 1000, id)
  local image, mask, watermark = unpack(
    redis.call('HMGET', base .. 'input:' .. id, 'image', 'mask', 'watermark'))
  local reply = {id, token, image, '0', '', '0', ''}
  if mask then reply[4], reply[5] = '1', mask end
  if watermark then reply[6], reply[7] = '1', watermark end
  return reply
end

-- renew: id, token, lease ms
if op == 'renew' then
  if not holds(ARGV[2], ARGV[3]) then return 0 end
  redis.call('ZADD', base .. 'leases', 'XX', now_us + tonumber(ARGV[4]) * 1000, ARGV[2])
  return 1
end

-- complete: id, token, status, error JSON, headers JSON, has png ("1"/"0"), png,
-- processing s, result ms, record ms
if op == 'complete' then
  if not holds(ARGV[2], ARGV[3]) then return 0 end
  local png = false
  if ARGV[7] == '1' then png = ARGV[8] end
  finish(ARGV[2], ARGV[4], ARGV[5], ARGV[6], ARGV[7] == '1' and ARGV[9] or '', png,
    tonumber(ARGV[10]), tonumber(ARGV[11]))
  return 1
end

-- release: id, token, delay ms
if op == 'release' then
  if not holds(ARGV[2], ARGV[3]) then return 0 end
  local key = job_key(ARGV[2])
  redis.call('HSET', key, 'status', 'queued')
  redis.call('HDEL', key, 'worker')
  redis.call('ZREM', base .. 'leases', ARGV[2])
  redis.call('ZADD', base .. 'queue', now_us + tonumber(ARGV[4]) * 1000, ARGV[2])
  return 1
end

-- cancel: id, record ms. delete: id, record ms (cancels, then drops input and result).
if op == 'cancel' or op == 'delete' then
  local id = ARGV[2]
  local status = redis.call('HGET', job_key(id), 'status')
  if status == 'queued' or status == 'running' then
    finish(id, 'canceled', '', '', '', false, 0, tonumber(ARGV[3]))
  end
  if op == 'delete' and status then
    redis.call('DEL', base .. 'result:' .. id)
    local ends = tonumber(redis.call('HGET', job_key(id), 'result_expires_at') or '0')
    if ends > now then redis.call('HSET', job_key(id), 'result_expires_at', seconds(now)) end
  end
  return 1
end

-- idempotency-begin: key name, fingerprint, claim ms. Returns {state, target}.
if op == 'idempotency-begin' then
  local fingerprint, target = unpack(redis.call('HMGET', ARGV[2], 'fingerprint', 'target'))
  if not fingerprint then
    redis.call('HSET', ARGV[2], 'fingerprint', ARGV[3])
    redis.call('PEXPIRE', ARGV[2], ARGV[4])
    return {'new', ''}
  end
  if fingerprint ~= ARGV[3] then return {'mismatch', ''} end
  if not target then return {'in_progress', ''} end
  return {'done', target}
end

-- idempotency-abandon: key name, fingerprint
if op == 'idempotency-abandon' then
  local fingerprint, target = unpack(redis.call('HMGET', ARGV[2], 'fingerprint', 'target'))
  if fingerprint == ARGV[3] and not target then redis.call('DEL', ARGV[2]) end
  return 1
end

-- effect-claim: lease ms. Returns {id, attempts} or false.
if op == 'effect-claim' then
  local id = redis.call('ZRANGEBYSCORE', base .. 'effects', '-inf', now_us, 'LIMIT', 0, 1)[1]
  if not id then return false end
  redis.call('ZADD', base .. 'effects', now_us + tonumber(ARGV[2]) * 1000, id)
  return {id, redis.call('HGET', base .. 'effect-attempts', id) or '0'}
end

-- effect-retry: id, delay ms. effect-finish: id.
if op == 'effect-retry' then
  redis.call('ZADD', base .. 'effects', now_us + tonumber(ARGV[3]) * 1000, ARGV[2])
  redis.call('HINCRBY', base .. 'effect-attempts', ARGV[2], 1)
  return 1
end
if op == 'effect-finish' then
  redis.call('ZREM', base .. 'effects', ARGV[2])
  redis.call('HDEL', base .. 'effect-attempts', ARGV[2])
  return 1
end

return redis.error_reply('unknown operation ' .. tostring(op))
