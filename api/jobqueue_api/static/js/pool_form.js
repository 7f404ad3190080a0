// Reading the pool forms' text into API request values. Pure (no DOM), so tests run it under node.
//
// The rules (ranges, min <= max, queue name format) live in the API, which answers a 422 naming the
// field; the UI does not copy them. It only turns typed text into JSON the API can judge: a whole number
// becomes a number, anything else is sent as the text itself, so the API's refusal names the field
// instead of the browser silently sending NaN (which JSON.stringify turns into null).

// "3" -> 3, " 12 " -> 12, "" -> undefined (the field is left out: the API's default or its "missing"),
// "2.5" / "1e3" / "abc" -> the trimmed text (a 422 naming the field). Digits past 2^53 stay text too:
// as a number they would lose digits, or become Infinity, which JSON sends as null ("missing").
export function countValue(text) {
  const trimmed = String(text ?? "").trim();
  if (trimmed === "") return undefined;
  if (/^-?\d+$/.test(trimmed) && Number.isSafeInteger(Number(trimmed))) return Number(trimmed);
  return trimmed;
}

// "emails, receipts  reports" -> ["emails", "receipts", "reports"]: commas or spaces separate names.
export function splitQueues(text) {
  return String(text ?? "")
    .split(/[\s,]+/)
    .filter((name) => name !== "");
}

// The body of POST /api/v1/worker-pools from the create form's text values; undefined members are
// dropped by JSON.stringify, so an empty box means "the API's default".
export function createPoolBody(values) {
  const body = {
    name: String(values.name ?? "").trim(),
    queues: splitQueues(values.queues),
    concurrency: countValue(values.concurrency),
    replicas: countValue(values.replicas),
  };
  if (values.autoscaling) body.autoscaling = autoscalingBody({ ...values, enabled: true });
  return body;
}

// The body of PUT /api/v1/worker-pools/{name}/autoscaling.
export function autoscalingBody(values) {
  return {
    enabled: Boolean(values.enabled),
    min_replicas: countValue(values.min),
    max_replicas: countValue(values.max),
    target_tasks_per_replica: countValue(values.target),
  };
}

// A pool's desired replicas in words: the held number, or the autoscaler's bounds while it decides (the
// local backend reports no number then; a cluster's operator reports the one it chose).
export function desiredText(pool) {
  const desired = pool.status ? pool.status.desired_replicas : null;
  const auto = pool.autoscaling || {};
  if (!auto.enabled) return desired === null || desired === undefined ? String(pool.replicas ?? "—") : String(desired);
  const bounds = `${auto.min_replicas}–${auto.max_replicas}`;
  return desired === null || desired === undefined ? `auto (${bounds})` : `${desired} (auto ${bounds})`;
}
