--[[ fail: a leased attempt ended without success; retry it after a backoff or finish it.
Fenced: accepted only with the current token while the task is RUNNING.
KEYS[1] task hash   KEYS[2] lease zset   KEYS[3] delayed zset   KEYS[4] dead letter zset
KEYS[5] event stream KEYS[6] stats hash  KEYS[7] wake list  KEYS[8] queue config hash
KEYS[9] the failing worker's held set (keys.QueueKeys.held)   KEYS[10] the task's child list
ARGV[1] task id     ARGV[2] fencing token
ARGV[3] error (type: message)            ARGV[4] traceback ('' = none)
ARGV[5] 1 if the worker's retry rules allow a retry of this error, else 0
ARGV[6] backoff in ms for that retry, '' = the task has no backoff policy of its own: use the queue's
        default (config hash retry_* fields, else exponential 1 s doubling, capped at 300 s, jittered)
ARGV[7] final status if not retried: FAILED, TIMEOUT or CANCELLED
ARGV[8] dead letter reason if not retried and the error itself is not retryable
ARGV[9] event stream max length          ARGV[10] completion channel
ARGV[11] max retry-history entries kept on the task
ARGV[12] a random draw in [0, 1) for the jitter of a queue-default backoff
ARGV[13] factor applied to the retry delay, whichever policy computed it (Settings.backoff_scale: 0 in
         test runs so retries are due at once; absent = 1)
ARGV[14] retries of a task that set none and whose queue sets none (Settings.default_max_retries; absent = 0)
ARGV[15] flags of a retry the task asked for (raise Retry): 'e' = ARGV[6] is the exact delay it asked
         for (not scaled by ARGV[13]); 'f' = not counted: retries unchanged and max_retries not applied
ARGV[16] TTL in seconds of a CANCELLED record (the task's result TTL, else Settings.result_ttl_seconds;
         absent = 86400): like every other finished record, it expires
Retry defaults: a task whose max_retries field is empty takes the queue's retry_max_retries (else ARGV[14]), read
here, at failure time, so a changed queue default applies to tasks already waiting.
A retry is not scheduled for a task whose cancel was requested: it ends CANCELLED.
Returns {code} (_fence.lua): 2 = retry scheduled, 3 = finished (dead-lettered, or cancelled); stale, with
nothing changed: -1 lease lost, -2 fenced by a newer attempt, -3 unknown task.
Workflows: when finished, PENDING descendants are cancelled (dependency_failed); dedup key released. ]]
--@include _common
--@include _fence
--@include _workflow
--@include _retry
local f = redis.call('HMGET', KEYS[1], 'status', 'attempts', 'retries', 'max_retries', 'history', 'watched',
  'started_at', 'cancel_requested')
local stale = jq_fence(f[1], f[2], ARGV[2])
if stale ~= 0 then
  return {stale}
end
local now = jq_now()
local retries = tonumber(f[3]) or 0
local max_retries = tonumber(f[4])
local backoff = tonumber(ARGV[6])
local defaults = {}
if max_retries == nil or backoff == nil then
  -- The task left these to its queue: read the queue's defaults (only on this failure path).
  defaults = redis.call('HMGET', KEYS[8], 'retry_max_retries', 'retry_backoff', 'retry_base_ms',
    'retry_max_ms', 'retry_jitter')
end
if max_retries == nil then max_retries = tonumber(defaults[1]) or tonumber(ARGV[14] or '') or 0 end
local flags = ARGV[15] or ''
local uncounted = string.find(flags, 'f', 1, true) ~= nil
local retry = ARGV[5] == '1' and (uncounted or retries < max_retries) and ARGV[7] ~= 'CANCELLED'
-- A retry of a task whose cancel was requested would run it again (only its next heartbeat would stop
-- it): it ends CANCELLED instead, as recover.lua and release.lua end such a task.
local cancelled_instead = retry and f[8] ~= false
if cancelled_instead then retry = false end
if retry and backoff == nil then
  backoff = jq_backoff_ms(defaults[2] or 'exponential', retries + 1, tonumber(defaults[3]) or 1000,
    tonumber(defaults[4]) or 300000, defaults[5] ~= '0', tonumber(ARGV[12]) or 1)
end
if string.find(flags, 'e', 1, true) then
  backoff = math.floor(backoff or 0)
else
  backoff = math.floor((backoff or 0) * (tonumber(ARGV[13] or '') or 1))
end
local duration = now - (tonumber(f[7]) or now)
local history = cjson.decode(f[5] or '[]')
local tb = ARGV[4]
if tb == '' then tb = cjson.null end
local entry = {attempt = tonumber(ARGV[2]), error = ARGV[3], traceback = tb, at = now / 1000}
if retry then entry.backoff_seconds = backoff / 1000 else entry.backoff_seconds = cjson.null end
history[#history + 1] = entry
local keep = tonumber(ARGV[11])
while #history > keep do
  table.remove(history, 1)
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[9], ARGV[1])
redis.call('HSET', KEYS[1], 'error', ARGV[3], 'traceback', ARGV[4], 'history', cjson.encode(history))
if retry then
  local due = now + backoff
  if not uncounted then retries = retries + 1 end
  redis.call('HSET', KEYS[1], 'status', 'RETRYING', 'retries', retries, 'eta', due)
  local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  redis.call('ZADD', KEYS[3], due, ARGV[1])
  if first[2] == nil or tonumber(first[2]) > due then
    jq_wake(KEYS[7])
  end
  redis.call('HINCRBY', KEYS[6], 'retried', 1)
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[9], '*', 'id', ARGV[1], 'event', 'retrying', 'ts', now,
    'token', ARGV[2], 'error', ARGV[3], 'backoff_ms', backoff, 'duration_ms', duration, 'traceback', ARGV[4])
  return {JQ_RETRY_SCHEDULED}
end
local status = ARGV[7]
if cancelled_instead then status = 'CANCELLED' end
redis.call('HSET', KEYS[1], 'status', status, 'completed_at', now)
redis.call('HDEL', KEYS[1], 'cancel_requested')
if status == 'CANCELLED' then
  -- Without a TTL a task cancelled while it ran stayed in Redis for good (cancel.lua and recover.lua
  -- expire theirs; only dead letters are kept).
  local ttl = tonumber(ARGV[16] or '') or 86400
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[10], ttl)
  redis.call('HINCRBY', KEYS[6], 'cancelled', 1)
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[9], '*', 'id', ARGV[1], 'event', 'cancelled', 'ts', now,
    'token', ARGV[2], 'duration_ms', duration, 'error', ARGV[3])
else
  local reason = ARGV[8]
  if status == 'TIMEOUT' then reason = 'timeout'
  elseif ARGV[5] == '1' then reason = 'max_retries_exceeded' end
  redis.call('HSET', KEYS[1], 'dead_letter_reason', reason)
  redis.call('PERSIST', KEYS[1])
  redis.call('PERSIST', KEYS[10])
  redis.call('ZADD', KEYS[4], now, ARGV[1])
  redis.call('HINCRBY', KEYS[6], 'dead_lettered', 1)
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[9], '*', 'id', ARGV[1], 'event', 'dead_lettered',
    'ts', now, 'token', ARGV[2], 'status', status, 'reason', reason, 'error', ARGV[3], 'duration_ms', duration,
    'traceback', ARGV[4])
end
if f[6] then
  redis.call('PUBLISH', ARGV[10], status)
end
-- workflows / dedup (lua/_workflow.lua)
jq_release_unique(KEYS[1], ARGV[1])
jq_cancel_descendants(KEYS[1], KEYS[10], now, ARGV[9])
if (tonumber(redis.call('HGET', KEYS[8], 'max_in_flight') or '0') or 0) > 0 then
  jq_wake(KEYS[7])
end
return {JQ_FINISHED}
