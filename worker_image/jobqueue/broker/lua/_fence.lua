-- Fencing and the reply codes of the completion scripts (--@include _fence): ack, fail and release each
-- reply with a list holding one code per task, so a caller reads every outcome the same way and a stale
-- one says why it was refused. Mirrored by jobqueue.broker.leases.CompletionCode.
local JQ_SUCCEEDED, JQ_RETRY_SCHEDULED, JQ_FINISHED, JQ_RELEASED = 1, 2, 3, 4
local JQ_LEASE_LOST, JQ_FENCED, JQ_UNKNOWN_TASK = -1, -2, -3

-- 0 when (status, attempts) read from a task hash is the live lease of ``token``; otherwise the stale
-- code: no task hash (expired, purged, or never existed); fenced: ``token`` is not the task's latest
-- attempt (the lease was recovered or handed back and leased again); lease lost: it is the latest
-- attempt but no longer RUNNING (recovered and queued again, finished or cancelled meanwhile).
local function jq_fence(status, attempts, token)
  if not status then
    return JQ_UNKNOWN_TASK
  end
  if attempts ~= token then
    return JQ_FENCED
  end
  if status ~= 'RUNNING' then
    return JQ_LEASE_LOST
  end
  return 0
end
