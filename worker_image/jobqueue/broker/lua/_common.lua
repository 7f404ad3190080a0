-- Helpers every transition needs (--@include _common; scripts.py splices it in once per script). They
-- were copied into each script by hand; one copy keeps the clock and the wake-up rule the same everywhere.

-- The Redis server clock in unix ms: every script's notion of now (never a client's clock, which drifts
-- between machines; TIME is allowed in scripts since Redis replicates their effects, not the script).
local function jq_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Wake one idle worker: the wake list holds at most one marker, so a burst of transitions costs the
-- blocked workers one wake-up, not one per task.
local function jq_wake(wake_key)
  if redis.call('LLEN', wake_key) == 0 then
    redis.call('LPUSH', wake_key, '1')
  end
end
