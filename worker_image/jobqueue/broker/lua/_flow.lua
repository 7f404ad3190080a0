-- Flow control shared by every script that starts tasks (spliced in by scripts.py: --@include _flow):
-- fetch.lua when a worker asks, and _handoff.lua when enqueue hands a task straight to a parked worker.
-- One implementation, so a hand-off can never start a task that a fetch would have been refused.
-- Config fields read (written by configure.lua): paused, max_in_flight, rate_limit, rate_period_ms,
-- rate_burst, rate_enabled ('0' = off), priority_policy, weights, (9 .. 11) the per-priority limits
-- rate_limit_high / _medium / _low (their periods and bursts are read by jq_level_allowances), and (12)
-- expires_ms (the queue's expiry, read by fetch.lua for _lease.lua: fetched here so a fetch still reads
-- its config in one command).
local function jq_flow_config(config_key)
  return redis.call('HMGET', config_key, 'paused', 'max_in_flight', 'rate_limit', 'rate_period_ms',
    'rate_burst', 'priority_policy', 'weights', 'rate_enabled', 'rate_limit_high', 'rate_limit_medium',
    'rate_limit_low', 'expires_ms')
end

-- Whether any priority level has a rate limit of its own (config from jq_flow_config).
local function jq_has_level_limits(cfg)
  return (tonumber(cfg[9] or '0') or 0) > 0 or (tonumber(cfg[10] or '0') or 0) > 0
    or (tonumber(cfg[11] or '0') or 0) > 0
end

-- GCRA over the state hash ``rate_key``: how many of ``want`` starts ``limit`` per ``period`` ms with
-- ``burst`` allow now. Returns (allowed, -1, gcra) or (0, milliseconds to wait, nil).
local function jq_gcra_allowance(rate_key, limit, period, burst, now, want)
  if period <= 0 then period = 1000 end
  local interval = period / limit
  if burst < 1 then burst = 1 end
  local tolerance = (burst - 1) * interval
  local state = redis.pcall('HMGET', rate_key, 'tat', 'interval')
  if state.err then
    -- State left by an older version as a plain string: drop it (at worst one burst more is allowed).
    redis.call('DEL', rate_key)
    state = {false, false}
  end
  local tat = tonumber(state[1] or '0') or 0
  local counted_in = tonumber(state[2] or '0') or 0
  -- The debt ahead of now is a number of starts: when the limit changed since it was counted, re-express
  -- it in the new interval, so a new limit takes effect at once (an old 1/min debt must not hold back a
  -- new 100/s limit for a minute) while the starts already made still count.
  if counted_in > 0 and counted_in ~= interval and tat > now then
    tat = now + (tat - now) * interval / counted_in
    -- Persist at once: re-expressing the old timestamp on every call would keep it from draining.
    redis.call('HSET', rate_key, 'tat', tat, 'interval', interval)
    redis.call('PEXPIRE', rate_key, math.ceil(tat - now) + 1000)
  end
  if tat < now then tat = now end
  -- The epsilon absorbs floating error of fractional intervals (e.g. 60000 / 7 ms).
  local allowed = math.floor((tolerance - (tat - now)) / interval + 1e-9) + 1
  if allowed <= 0 then
    return 0, math.max(1, math.ceil(tat - tolerance - now)), nil
  end
  if allowed < want then want = allowed end
  return want, -1, {tat = tat, interval = interval}
end

-- How many of ``want`` tasks may start now. Returns (allowed, wait, gcra): allowed = 0 with wait -2
-- (paused), -3 (max in-flight reached) or the milliseconds the rate limit says to wait; otherwise wait is
-- -1 and gcra is the rate-limit state to pass to jq_flow_commit once the tasks actually started are known.
local function jq_flow_allowance(cfg, leases_key, rate_key, now, want)
  if cfg[1] == '1' then
    return 0, -2, nil
  end
  local max_in_flight = tonumber(cfg[2] or '0') or 0
  if max_in_flight > 0 then
    local room = max_in_flight - redis.call('ZCARD', leases_key)
    if room <= 0 then
      return 0, -3, nil
    end
    if room < want then want = room end
  end
  -- Rate limit as GCRA: the state hash holds one "theoretical arrival time" (tat) and the interval it was
  -- counted in; burst tasks may start at once, then one per interval. Tokens are only consumed for tasks
  -- actually started (jq_flow_commit).
  local limit = tonumber(cfg[3] or '0') or 0
  if cfg[8] == '0' then limit = 0 end
  if limit <= 0 then
    return want, -1, nil
  end
  return jq_gcra_allowance(rate_key, limit, tonumber(cfg[4] or '') or 1000, tonumber(cfg[5] or '1') or 1,
    now, want)
end

-- The per-priority limits, beside the queue's own (a start counts against both): for each level with a
-- limit (config rate_limit_<level>, rate_period_ms_<level>, rate_burst_<level>), how many of ``want`` it
-- may start now, the wait when none, and its GCRA state to commit. A level without a limit is absent
-- from ``allowed`` (no bound). ``rate_keys``: {high = key, medium = key, low = key}.
local function jq_level_allowances(config_key, rate_keys, now, want)
  local f = redis.call('HMGET', config_key, 'rate_limit_high', 'rate_period_ms_high', 'rate_burst_high',
    'rate_limit_medium', 'rate_period_ms_medium', 'rate_burst_medium',
    'rate_limit_low', 'rate_period_ms_low', 'rate_burst_low')
  local allowed, waits, gcras = {}, {}, {}
  for i, level in ipairs({'high', 'medium', 'low'}) do
    local limit = tonumber(f[3 * i - 2] or '0') or 0
    if limit > 0 then
      allowed[level], waits[level], gcras[level] = jq_gcra_allowance(rate_keys[level], limit,
        tonumber(f[3 * i - 1] or '') or 1000, tonumber(f[3 * i] or '1') or 1, now, want)
    end
  end
  return allowed, waits, gcras
end

-- Consume rate-limit tokens for ``count`` tasks started under the allowance that returned ``gcra``.
local function jq_flow_commit(rate_key, gcra, count, now)
  if gcra and count > 0 then
    local tat = gcra.tat + count * gcra.interval
    redis.call('HSET', rate_key, 'tat', tat, 'interval', gcra.interval)
    redis.call('PEXPIRE', rate_key, math.ceil(tat - now) + 1000)
  end
end
