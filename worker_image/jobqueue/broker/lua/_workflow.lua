--[[ _workflow: functions shared by the scripts that create or finish a task (enqueue, ack, fail, cancel,
recover).
Not a script of its own: scripts.py splices this file in where a script has the line `--@include _workflow`,
so each transition stays ONE script and the dependency rules live in one place.

Keys are never built here. They were computed by the Python key module at enqueue time and stored as data:
  parent:       its child list (keys.QueueKeys.children, passed in KEYS by whoever finishes the parent)
                holds the children's task hash keys, one RPUSH per child; children_key = that list's
                key on the parent's hash (for scripts that find ids inside: recover, purge_dead).
                Before that list, a parent kept child_keys (a JSON list rewritten per child: O(n^2) for
                a fan-out); a parent written that way is still read here.
  child hash:   dep_keys   = JSON {id, ready, delayed, wake, events, stats, done, children} of the child's
                own queue (children = its own child list, for the cascade below)
                pending_parents = parents not yet succeeded; pass_result = '' | 'first' | 'list'
                presult:<parent id> = a parent's result JSON, kept for pass_result
  unique task:  unique_key = its dedup key (same queue, same slot; it holds the task hash key of its
                holder), unique_rerun = '1' to release it
On a single Redis children may live in other queues. On Redis Cluster a script may only touch its own slot,
so a workflow must stay in one queue there (see docs/workflows.md). ]]

--@include _common

-- Descendants cancelled per failing task in one script call; bounds the script's run time. Beyond it the
-- remaining descendants stay PENDING (they can never run: a parent of theirs will never succeed).
local JQ_CASCADE_LIMIT = 10000

-- Release a finished task's dedup key when re-execution after completion is allowed. Compare-and-delete:
-- after the key's TTL another task may hold it, and that one must keep it.
-- The key holds the holder's task hash key (a bare id when written before that layout).
local function jq_release_unique(task_key, id)
  local u = redis.call('HMGET', task_key, 'unique_key', 'unique_rerun')
  if u[1] and u[2] == '1' then
    local holder = redis.call('GET', u[1])
    if holder == task_key or holder == id then
      redis.call('DEL', u[1])
    end
  end
end

-- Put the parents' results (kept as presult:<id>) in front of a child's args: 'first' = the first parent's
-- result, 'list' = the list of all of them in parent order; any other mode leaves args alone.
local function jq_splice_results(child_key, mode)
  if mode ~= 'first' and mode ~= 'list' then return end
  local parents = cjson.decode(redis.call('HGET', child_key, 'parents') or '[]')
  local results = {}
  for i, pid in ipairs(parents) do
    results[i] = redis.call('HGET', child_key, 'presult:' .. pid) or 'null'
  end
  local value = results[1] or 'null'
  if mode == 'list' then value = '[' .. table.concat(results, ',') .. ']' end
  -- args is the compact JSON array the client wrote: splice the value in as text, so no JSON value is
  -- re-encoded by cjson (which turns [] into {} and rounds large integers).
  local args = redis.call('HGET', child_key, 'args') or '[]'
  if args == '[]' then
    args = '[' .. value .. ']'
  else
    args = '[' .. value .. ',' .. string.sub(args, 2)
  end
  redis.call('HSET', child_key, 'args', args)
end

-- A child whose last parent succeeded: splice parent results into its args if asked, then queue it.
local function jq_make_ready(child_key, mode, dep_keys, eta, now, maxlen)
  local k = cjson.decode(dep_keys)
  jq_splice_results(child_key, mode)
  local due = tonumber(eta) or 0
  local status = 'QUEUED'
  if due > now then
    status = 'DELAYED'
    redis.call('ZADD', k.delayed, due, k.id)
  else
    redis.call('RPUSH', k.ready, k.id)
  end
  -- ready_at: the child's queue wait starts now, not at its enqueue (which included its parents' run).
  redis.call('HSET', child_key, 'status', status, 'ready_at', now)
  jq_wake(k.wake)
  redis.call('XADD', k.events, 'MAXLEN', '~', maxlen, '*', 'id', k.id, 'event', 'released', 'ts', now,
    'status', status)
end

-- The task hash keys of a task's children: its child list, then a legacy child_keys JSON list if any.
local function jq_child_keys(task_key, children_key)
  local keys = {}
  if children_key then
    keys = redis.call('LRANGE', children_key, 0, -1)
  end
  local legacy = redis.call('HGET', task_key, 'child_keys')
  if legacy then
    for _, k in ipairs(cjson.decode(legacy)) do
      keys[#keys + 1] = k
    end
  end
  return keys
end

-- A task succeeded: count it off each waiting child; the decrement that reaches zero queues the child.
-- Atomic inside the ack script, so a chord callback is queued exactly once even when its members finish
-- on different workers at the same moment. O(children) per call: each child is touched once.
local function jq_release_children(task_key, children_key, id, result, now, maxlen)
  for _, child_key in ipairs(jq_child_keys(task_key, children_key)) do
    local c = redis.call('HMGET', child_key, 'status', 'pass_result', 'dep_keys', 'eta')
    if c[1] == 'PENDING' then
      if c[2] == 'first' or c[2] == 'list' then
        redis.call('HSET', child_key, 'presult:' .. id, result)
      end
      if redis.call('HINCRBY', child_key, 'pending_parents', -1) <= 0 then
        jq_make_ready(child_key, c[2], c[3], c[4], now, maxlen)
      end
    end
  end
end

-- A task will never succeed (dead-lettered or cancelled): cancel every PENDING descendant with reason
-- dependency_failed. Breadth-first and iterative (no recursion depth limit); each descendant changes
-- state at most once, so a diamond is visited once. ``children_key`` is the task's own child list.
-- Returns how many were cancelled.
local function jq_cancel_descendants(task_key, children_key, now, maxlen)
  local frontier = {{task_key, children_key}}
  local head, cancelled = 1, 0
  while head <= #frontier and cancelled < JQ_CASCADE_LIMIT do
    local node = frontier[head]
    head = head + 1
    for _, child_key in ipairs(jq_child_keys(node[1], node[2])) do
      local c = redis.call('HMGET', child_key, 'status', 'dep_keys', 'watched', 'result_ttl')
      if c[1] == 'PENDING' then
        local k = cjson.decode(c[2])
        local ttl = tonumber(c[4]) or 86400
        redis.call('HSET', child_key, 'status', 'CANCELLED', 'cancel_reason', 'dependency_failed',
          'completed_at', now)
        redis.call('EXPIRE', child_key, ttl)
        if k.children then
          redis.call('EXPIRE', k.children, ttl)
        end
        redis.call('HINCRBY', k.stats, 'cancelled', 1)
        redis.call('XADD', k.events, 'MAXLEN', '~', maxlen, '*', 'id', k.id, 'event', 'cancelled',
          'ts', now, 'reason', 'dependency_failed')
        if c[3] then redis.call('PUBLISH', k.done, 'CANCELLED') end
        jq_release_unique(child_key, k.id)
        cancelled = cancelled + 1
        frontier[#frontier + 1] = {child_key, k.children}
      end
    end
  end
  return cancelled
end
