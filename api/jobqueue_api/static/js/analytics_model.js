// The Analytics page's arithmetic over the record's REST answers. Pure (no DOM), so tests run it under
// node (tests/unit/jobqueue/test_ui_analytics_model.py).

export const HOUR = 3600;
export const DAY = 86400;
// The buckets charted: the API's default ranges (a day of hours, a month of days).
export const BUCKETS = { hourly: 24, daily: 30 };

function floorTo(unixSeconds, width) {
  if (width === DAY) {
    const d = new Date(unixSeconds * 1000);
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()) / 1000;
  }
  return Math.floor(unixSeconds / width) * width;
}

function worst(a, b) {
  if (b === null || b === undefined || !Number.isFinite(b)) return a;
  return a === null ? b : Math.max(a, b);
}

// rows: aggregate buckets of GET /api/v1/metrics/hourly|daily (one per bucket, queue and task name).
// Returns the last `count` buckets up to `now` (unix seconds), oldest first, with the finished tasks,
// the success rate in % (succeeded / (succeeded + failed), null when none finished) and, for run time,
// the slowest task's p50 / p95 / p99 of each bucket (percentiles of different tasks cannot be merged;
// filter on one task for its own). Buckets without rows are zero / null, so gaps show as gaps.
export function bucketSeries(rows, granularity, now) {
  const width = granularity === "daily" ? DAY : HOUR;
  const count = BUCKETS[granularity] ?? BUCKETS.hourly;
  const last = floorTo(now, width);
  const buckets = [];
  for (let i = count - 1; i >= 0; i--) buckets.push(width === DAY ? last - i * DAY : last - i * width);
  const index = new Map(buckets.map((b, i) => [b, i]));
  const zero = () => buckets.map(() => 0);
  const none = () => buckets.map(() => null);
  const out = { buckets, completed: zero(), succeeded: zero(), failed: zero(), p50: none(), p95: none(), p99: none() };
  for (const row of rows || []) {
    const at = Date.parse(row.bucket) / 1000;
    const i = index.get(floorTo(at, width));
    if (i === undefined) continue;
    out.completed[i] += (row.succeeded || 0) + (row.failed || 0) + (row.cancelled || 0);
    out.succeeded[i] += row.succeeded || 0;
    out.failed[i] += row.failed || 0;
    out.p50[i] = worst(out.p50[i], row.duration_p50_ms);
    out.p95[i] = worst(out.p95[i], row.duration_p95_ms);
    out.p99[i] = worst(out.p99[i], row.duration_p99_ms);
  }
  out.successRate = buckets.map((_, i) => {
    const finished = out.succeeded[i] + out.failed[i];
    return finished ? (100 * out.succeeded[i]) / finished : null;
  });
  return out;
}

// The breakdown rows of GET /api/v1/metrics for one grouping: "queue" (name null) or "task" (both set).
export function breakdownRows(breakdown, groupBy) {
  return (breakdown || []).filter((r) => (groupBy === "task" ? r.name !== null : r.name === null && r.queue !== null));
}

// Dead letters by queue and reason, most first: from each queue's dead-letters/stats answer.
export function deadLetterRows(statsList) {
  const rows = [];
  for (const s of statsList || []) {
    for (const [reason, count] of Object.entries(s.by_reason || {})) rows.push({ queue: s.queue, reason, count });
  }
  return rows.sort((a, b) => b.count - a.count || String(a.queue).localeCompare(String(b.queue)) || String(a.reason).localeCompare(String(b.reason)));
}

// A run time in ms for people: "—", "850 ms", "1.2 s", "3 min 5 s", "2 h 0 min", "3 d 4 h".
export function fmtMs(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) return "—";
  if (ms < 1000) return `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
  // A task may run for days (no timeout); past that the number is a stored outlier, not a duration.
  if (s >= 1e5 * 86400) return "> 99999 d";
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

// A rate (0..1 from the API) as a percentage, "—" when nothing finished.
export function fmtRate(rate) {
  return rate === null || rate === undefined || !Number.isFinite(rate) ? "—" : `${(100 * rate).toFixed(1)} %`;
}
