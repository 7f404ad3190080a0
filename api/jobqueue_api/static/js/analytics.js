// Analytics over the PostgreSQL record: finished tasks, success rate and run-time percentiles over the
// last day (hourly buckets) or month (daily buckets), per queue or per task name, and the dead letters of
// every queue by reason. The record is queried at most every REFRESH_MS (the shell polls every 2 s, a
// dashboard nobody changes need not make PostgreSQL aggregate that often); a control change refreshes
// at once. Queue, task names and reasons come from users: rendered as text (dom.js), never as HTML.

import { api } from "./api.js";
import { breakdownRows, bucketSeries, deadLetterRows, fmtMs, fmtRate } from "./analytics_model.js";
import { card, fmtNumber, h, link, renderIfChanged, replace, section, showMessage, table } from "./dom.js";
import { bucketChart, bucketFigure } from "./time_charts.js";

const REFRESH_MS = 30_000;
const WINDOW = { hourly: 86_400, daily: 30 * 86_400 };

export function title() {
  return "Analytics";
}

function choice(name, legend, options, initial, onChange) {
  return h(
    "fieldset",
    { class: "choice" },
    h("legend", {}, legend),
    options.map(([value, label]) => {
      const id = `${name}-${value}`;
      return h(
        "label",
        { for: id, class: "check" },
        h("input", { type: "radio", id, name, value, checked: value === initial, onchange: () => onChange(value) }),
        label,
      );
    }),
  );
}

function breakdownColumns(groupBy, granularity) {
  const per = granularity === "daily" ? "day" : "hour";
  const scale = granularity === "daily" ? 86_400 : 3_600;
  return [
    { label: "Queue", cell: (r) => link(`#/queues/${encodeURIComponent(r.queue)}`, r.queue), class: "wrap" },
    ...(groupBy === "task" ? [{ label: "Task", cell: (r) => r.name, class: "mono wrap" }] : []),
    { label: "Finished", cell: (r) => fmtNumber(r.completed), class: "num" },
    { label: `Avg per ${per}`, cell: (r) => fmtPer(r.throughput.completed_per_second * scale), class: "num" },
    { label: "Success", cell: (r) => fmtRate(r.success_rate), class: "num" },
    { label: "p50", cell: (r) => fmtMs(r.duration_ms.p50), class: "num" },
    { label: "p95", cell: (r) => fmtMs(r.duration_ms.p95), class: "num" },
    { label: "p99", cell: (r) => fmtMs(r.duration_ms.p99), class: "num" },
  ];
}

// Averages over a long window are often below one: keep two significant digits instead of rounding to 0.
function fmtPer(value) {
  if (!value) return "0";
  return value < 10 ? String(Number(value.toPrecision(2))) : fmtNumber(Math.round(value));
}

const deadColumns = [
  { label: "Queue", cell: (r) => link(`#/dead-letters/${encodeURIComponent(r.queue)}`, r.queue), class: "wrap" },
  { label: "Reason", cell: (r) => r.reason, class: "mono wrap" },
  { label: "Dead letters", cell: (r) => fmtNumber(r.count), class: "num" },
];

export function mount(root) {
  const view = { granularity: "hourly", groupBy: "queue" };
  let fetchedAt = 0;
  let data = null;
  const status = h("p", { class: "help status-line", id: "analytics-status" });
  const cards = h("div", { class: "cards", id: "analytics-cards" });
  const charts = h("div", { class: "charts", id: "analytics-charts" });
  const breakdown = h("div", { id: "analytics-breakdown" });
  const dead = h("div", { id: "analytics-dead-letters" });
  const breakdownTitle = h("h2", {}, "By queue");
  const changed = () => {
    fetchedAt = 0;
    refresh().catch(() => {}); // the next poll reports a failure in the notice
  };
  const controls = h(
    "div",
    { class: "row controls", id: "analytics-controls" },
    choice("analytics-granularity", "Buckets", [["hourly", "Hourly, last 24 h"], ["daily", "Daily, last 30 days"]], view.granularity, (v) => {
      view.granularity = v;
      changed();
    }),
    choice("analytics-group", "Break down by", [["queue", "Queue"], ["task", "Task name"]], view.groupBy, (v) => {
      view.groupBy = v;
      render();
    }),
  );
  replace(
    root,
    h("h1", {}, "Analytics"),
    h("p", { class: "help" }, "From the PostgreSQL record (tasks the recorder has written), not live Redis state."),
    controls,
    status,
    cards,
    section("Over time", charts),
    h("section", { class: "panel", "aria-label": "Breakdown" }, breakdownTitle, breakdown),
    section("Dead letters by queue and reason", dead, h("p", { class: "help" }, "Tasks in each queue's dead letter set now (live Redis state).")),
  );

  function render() {
    if (!data) return;
    const { metrics, buckets, deadStats, granularity } = data;
    const daily = granularity === "daily";
    const totals = metrics.totals;
    renderIfChanged(cards, { totals, granularity }, (el) =>
      replace(
        el,
        card(daily ? "Finished (30 d)" : "Finished (24 h)", fmtNumber(totals.completed)),
        card("Success rate", fmtRate(totals.success_rate)),
        card("Run time p50", fmtMs(totals.duration_ms.p50)),
        card("Run time p95", fmtMs(totals.duration_ms.p95)),
        card("Run time p99", fmtMs(totals.duration_ms.p99)),
        card("Dead-lettered", fmtNumber(totals.failed)),
      ),
    );
    const series = bucketSeries(buckets, granularity, Date.now() / 1000);
    renderIfChanged(charts, { series, granularity }, (el) => drawCharts(el, series, daily));
    breakdownTitle.textContent = view.groupBy === "task" ? "By task name" : "By queue";
    const rows = breakdownRows(metrics.breakdown, view.groupBy);
    renderIfChanged(breakdown, { rows, view }, (el) =>
      replace(el, table("Breakdown", breakdownColumns(view.groupBy, granularity), rows, "Nothing finished in this window.")),
    );
    const deadRows = deadLetterRows(deadStats);
    renderIfChanged(dead, deadRows, (el) => replace(el, table("Dead letters by queue and reason", deadColumns, deadRows, "No dead letters.")));
  }

  async function refresh() {
    if (Date.now() - fetchedAt < REFRESH_MS) return;
    const granularity = view.granularity;
    let metrics;
    let buckets;
    try {
      [metrics, buckets] = await Promise.all([
        api.metrics(WINDOW[granularity]),
        granularity === "daily" ? api.metricsDaily() : api.metricsHourly(),
      ]);
    } catch (error) {
      // No record configured is a deployment choice, not a failed update: say so in place. A record or
      // a Redis that is down is a failed update, reported in the notice like on every page.
      if (error.code !== "record_not_configured") throw error;
      showMessage(status, "error", error.describe());
      return;
    }
    // The queue listing is paged: the first 1,000 queues, as the dead letters page lists.
    const queues = (await api.queues(null, 1000)).items;
    const deadStats = await Promise.all(queues.filter((q) => q.dead_letters > 0).map((q) => api.deadLetterStats(q.name)));
    if (granularity !== view.granularity) return; // the user switched while this was in flight
    fetchedAt = Date.now();
    data = { metrics, buckets, deadStats, granularity };
    showMessage(status, "", `Record read at ${new Date().toLocaleTimeString()}; refreshed every ${REFRESH_MS / 1000} s.`);
    status.className = "help status-line";
    render();
  }

  return { refresh };
}

function drawCharts(el, s, daily) {
  const unit = daily ? "day" : "hour";
  const count = (v) => (v < 10 && v % 1 ? v.toFixed(1) : fmtNumber(Math.round(v)));
  const throughput = [{ label: "Finished", values: s.completed }];
  const success = [{ label: "Success", values: s.successRate }];
  const runTime = [
    { label: "p50", values: s.p50, cls: "s1" },
    { label: "p95", values: s.p95, cls: "s2" },
    { label: "p99", values: s.p99, cls: "s3" },
  ];
  replace(
    el,
    bucketFigure(
      `Tasks finished per ${unit}`,
      bucketChart({ title: "Finished", buckets: s.buckets, series: throughput, format: count, kind: "bars", daily, emptyText: "No task finished in this range." }),
    ),
    bucketFigure(
      `Success rate per ${unit}`,
      bucketChart({ title: "Success rate", buckets: s.buckets, series: success, format: (v) => `${Math.round(v)} %`, fixedMax: 100, daily, emptyText: "No task finished in this range." }),
    ),
    bucketFigure(
      `Run time per ${unit} (slowest task)`,
      bucketChart({ title: "Run time", buckets: s.buckets, series: runTime, format: fmtMs, daily, emptyText: "No run time recorded in this range." }),
      runTime,
    ),
  );
}
