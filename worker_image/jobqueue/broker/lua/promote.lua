--[[ promote: move due delayed tasks (eta, countdown, retry backoff) to their ready lists; the
scheduler's transition (workers promote inside fetch.lua as well, with the same _promote.lua).
KEYS[1] ready high   KEYS[2] ready medium   KEYS[3] ready low   KEYS[4] delayed zset   KEYS[5] wake list
ARGV[1] task key prefix (the due ids are only known inside the script; their hashes share the queue's
        hash tag, so they live on the queue's cluster slot)
ARGV[2] max tasks promoted per call
Returns {promoted, next_due_ms}: next_due_ms = milliseconds until the earliest task still delayed is
due, -1 if none. Idle workers are woken when anything became ready. ]]
--@include _common
--@include _promote
local prefix = ARGV[1]
local ready = {high = KEYS[1], medium = KEYS[2], low = KEYS[3]}
local promoted, next_due = jq_promote(KEYS[4], ready, function(id) return prefix .. id end, jq_now(),
  tonumber(ARGV[2]))
if promoted > 0 then
  jq_wake(KEYS[5])
end
return {promoted, next_due}
