--[[ enqueue_many: create many plain tasks of one queue and one spec (same name, priority, options) in one
call. Plain = ready now or delayed; no dependencies, no deduplication, no caller-chosen id (those go
through enqueue.lua, which checks for an existing task). Writes exactly what enqueue.lua writes for such a
task: the same hash fields, the same 'enqueued' event with the whole spec, the same wake-up and counter.
KEYS[1] ready list of the spec's priority   KEYS[2] delayed zset   KEYS[3] wake list
KEYS[4] event stream                        KEYS[5] stats hash
KEYS[6] parked workers hash  KEYS[7] ready high  KEYS[8] ready medium  KEYS[9] ready low
KEYS[10] lease zset          KEYS[11] rate-limit state    KEYS[12] queue config hash  (6-12: the hand-off)
KEYS[12 + i] task hash of task i (i = 1 .. N, in the order of the tasks in ARGV)
ARGV[1] event stream max length (approximate)
ARGV[2] S, the number of shared spec values: field, value pairs (name, priority, result_ttl, ...)
ARGV[3 .. 2+S] the shared spec pairs
ARGV[3+S ..] per task 5 values: id, args JSON, kwargs JSON, due time in unix ms (0 = now),
             countdown in ms (added to server time; 0 = none)
Returns the status of each task, in order: 'QUEUED' or 'DELAYED', or the current status of a task whose
id already exists (a pipeline re-sent after a lost reply must not queue the same task twice). The ids are
fresh, made by the client for this call alone, and a call is atomic: either it ran (its tasks exist) or it
did not, so existence is looked up per task only when the first or the last task exists.
Time is the Redis server clock (TIME), never a client clock, except an absolute eta given by the user.
Lean layout (docs/design.md, "The task hash and its enqueued event"): a field whose value is its default
is not written. The counters attempts, retries and lost_leases start absent (= 0; HINCRBY and every reader
treat a missing field as 0), eta is written only for a delayed task (absent = no eta, as 0 was), and the
client sends neither an empty max_retries (= the queue's default) nor the queue (the id's prefix).
Numbers go to redis.call as text made once per call: a Lua number is formatted with sprintf('%.14g') each
time it is passed, which profiled at about a tenth of Redis's user-space CPU of an enqueue. ]]
--@include _common
--@include _handoff
local now = jq_now()
local now_s = string.format('%d', now)
local maxlen = ARGV[1]
local nspec = tonumber(ARGV[2])
local spec = {}
for i = 1, nspec do
  spec[i] = ARGV[2 + i]
end
local first_task = 3 + nspec
local ntasks = (#ARGV - nspec - 2) / 5
-- For the hand-off below: each ready task's hash key, and whether a delayed task must still wake workers.
local task_keys = {}
local wake_delayed = false
local count = 0 -- tasks created
local statuses = {}
local ready_ids = {}
local earliest_delayed = nil -- the first delayed task before this call, looked up only when needed
local wake = false
-- One or two lookups instead of one per task (a third of the per-task calls); the last task is checked
-- too so that a re-sent call whose first task was since deleted still finds the others.
local resent = redis.call('EXISTS', KEYS[13], KEYS[12 + ntasks]) > 0
for i = 1, ntasks do
  local a = first_task + (i - 1) * 5
  local id, args, kwargs = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local existing = resent and redis.call('HGET', KEYS[12 + i], 'status')
  if existing then
    statuses[i] = existing
  else
    -- due stays text (as sent) unless a countdown makes it: most tasks have neither.
    local due_s, countdown = ARGV[a + 3], ARGV[a + 4]
    if countdown ~= '0' then
      due_s = string.format('%d', now + tonumber(countdown))
    end
    local due = 0
    if due_s ~= '0' then
      due = tonumber(due_s)
    end
    if due <= now then
      redis.call('HSET', KEYS[12 + i], 'status', 'QUEUED', 'enqueued_at', now_s, 'args', args,
        'kwargs', kwargs, unpack(spec))
      ready_ids[#ready_ids + 1] = id
      task_keys[id] = KEYS[12 + i]
      wake = true
      statuses[i] = 'QUEUED'
      -- The event's eta is the due time asked for, even one already past; absent = none (0 before).
      if due == 0 then
        redis.call('XADD', KEYS[4], 'MAXLEN', '~', maxlen, '*', 'id', id, 'event', 'enqueued', 'ts', now_s,
          'status', 'QUEUED', 'args', args, 'kwargs', kwargs, unpack(spec))
      else
        redis.call('XADD', KEYS[4], 'MAXLEN', '~', maxlen, '*', 'id', id, 'event', 'enqueued', 'ts', now_s,
          'status', 'QUEUED', 'eta', due_s, 'args', args, 'kwargs', kwargs, unpack(spec))
      end
    else
      redis.call('HSET', KEYS[12 + i], 'status', 'DELAYED', 'enqueued_at', now_s, 'eta', due_s, 'args', args,
        'kwargs', kwargs, unpack(spec))
      if earliest_delayed == nil then
        local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
        earliest_delayed = tonumber(first[2]) or math.huge
      end
      redis.call('ZADD', KEYS[2], due_s, id)
      -- Wake idle workers only if this task is due before anything they already wait for.
      if due < earliest_delayed then
        earliest_delayed = due
        wake, wake_delayed = true, true
      end
      statuses[i] = 'DELAYED'
      redis.call('XADD', KEYS[4], 'MAXLEN', '~', maxlen, '*', 'id', id, 'event', 'enqueued', 'ts', now_s,
        'status', 'DELAYED', 'eta', due_s, 'args', args, 'kwargs', kwargs, unpack(spec))
    end
    count = count + 1
  end
end
-- The first ready tasks go straight to parked workers while any take them (_handoff.lua), the rest queue.
local handed = 0
local handoff_keys = {parked = KEYS[6], high = KEYS[7], medium = KEYS[8], low = KEYS[9], delayed = KEYS[2],
  leases = KEYS[10], rate = KEYS[11], config = KEYS[12], events = KEYS[4], stats = KEYS[5]}
while handed < #ready_ids and jq_handoff(handoff_keys, task_keys[ready_ids[handed + 1]], ready_ids[handed + 1],
    now, maxlen) do
  handed = handed + 1
end
if handed > 0 then
  wake = handed < #ready_ids or wake_delayed
end
-- Variadic RPUSH in slices: unpack's arguments live on the Lua stack, which is bounded.
for from = handed + 1, #ready_ids, 500 do
  redis.call('RPUSH', KEYS[1], unpack(ready_ids, from, math.min(from + 499, #ready_ids)))
end
if wake then
  jq_wake(KEYS[3])
end
if count > 0 then
  redis.call('HINCRBY', KEYS[5], 'enqueued', count)
end
return statuses
