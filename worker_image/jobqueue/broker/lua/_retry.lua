-- Retry backoff shared by the scripts that schedule retries (spliced in by scripts.py: --@include _retry).
-- Mirrors jobqueue.retry.base_delay and RetryPolicy.delay; tests/integration/jobqueue/test_queue_defaults.py
-- checks the two agree. ``draw`` is a random number in [0, 1) chosen by the caller: Lua's math.random is
-- not a source the caller controls (and scripts must replicate the same way on every replica).
local function jq_backoff_ms(strategy, retry_number, base_ms, cap_ms, jitter, draw)
  local raw
  if strategy == 'linear' then
    raw = base_ms * retry_number
  elseif strategy == 'constant' then
    raw = base_ms
  elseif strategy == 'fibonacci' then
    local a, b = 1, 1
    for _ = 2, retry_number do
      a, b = b, a + b
      if a > cap_ms then break end
    end
    raw = base_ms * a
  else
    raw = base_ms * 2 ^ (retry_number - 1)
  end
  local delay = math.max(0, math.min(raw, cap_ms))
  if jitter and delay > 0 then
    delay = delay * (0.5 + 0.5 * draw)
  end
  return math.floor(delay)
end
