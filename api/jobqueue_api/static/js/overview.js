// Overview: every queue's depth per priority, in-flight, delayed, dead letters and oldest age; workers;
// throughput and success-rate charts computed from the queues' lifetime counters; the worker pools (with
// their replicas sparkline) right under the queues they serve.

import { api } from "./api.js";
import { CounterHistory, activityCharts, lifetimeSuccessRate, sumCounters } from "./charts.js";
import {
  card,
  fmtAge,
  fmtNumber,
  h,
  link,
  renderIfChanged,
  replace,
  section,
  statusBadge,
  table,
} from "./dom.js";
import { cursorPager } from "./pager.js";
import { desiredText } from "./pool_form.js";
import { poolHref, replicasSparkline } from "./pools.js";

// Kept at module level so the charts keep their history when the user visits another page and returns.
const history = new CounterHistory();

export function title() {
  return "Overview";
}

function queueColumns() {
  return [
    { label: "Queue", cell: (q) => link(`#/queues/${encodeURIComponent(q.name)}`, q.name) },
    { label: "High", cell: (q) => fmtNumber(q.ready.high), class: "num" },
    { label: "Medium", cell: (q) => fmtNumber(q.ready.medium), class: "num" },
    { label: "Low", cell: (q) => fmtNumber(q.ready.low), class: "num" },
    { label: "Delayed", cell: (q) => fmtNumber(q.delayed), class: "num" },
    { label: "In flight", cell: (q) => fmtNumber(q.in_flight), class: "num" },
    {
      label: "Dead letters",
      cell: (q) => link(`#/dead-letters/${encodeURIComponent(q.name)}`, fmtNumber(q.dead_letters)),
      class: "num",
    },
    { label: "Oldest waiting", cell: (q) => fmtAge(q.oldest_ready_age_seconds), class: "num" },
  ];
}

const poolColumns = [
  { label: "Pool", cell: (p) => link(poolHref(p.name), p.name, { class: "mono id" }) },
  { label: "Queues", cell: (p) => p.queues.join(", "), class: "wrap" },
  { label: "Desired", cell: desiredText, class: "num" },
  { label: "Ready", cell: (p) => fmtNumber(p.status?.ready_replicas ?? 0), class: "num" },
  { label: "Replicas over time", cell: replicasSparkline },
  { label: "In flight", cell: (p) => fmtNumber(p.status?.queue_in_flight), class: "num" },
];

// Pools beside the queues they serve; an API without a pool backend (409) shows a line, not an error.
async function loadPools() {
  try {
    return { pools: (await api.pools()).pools, note: null };
  } catch (error) {
    if (error.status !== 409) throw error;
    return { pools: [], note: "No pool backend is configured (JOBQUEUE_API_POOLS_BACKEND)." };
  }
}

const workerColumns = [
  { label: "Worker", cell: (w) => w.id, class: "mono" },
  { label: "Status", cell: (w) => statusBadge(w.status) },
  { label: "Heartbeat", cell: (w) => `${fmtAge(w.heartbeat_age_seconds)} ago`, class: "num" },
  { label: "Running", cell: (w) => `${w.current_tasks.length} / ${w.concurrency}`, class: "num" },
];

// Workers shown on the overview; the Workers page pages through all of them.
const OVERVIEW_WORKERS = 50;

function liveWorkers(stats) {
  return Object.entries(stats.by_status)
    .filter(([status]) => status !== "DEAD")
    .reduce((n, [, count]) => n + count, 0);
}

export function mount(root, _params, ctx) {
  const cards = h("div", { class: "cards", id: "overview-cards" });
  const charts = h("div", { class: "charts" });
  const queues = h("div", { id: "overview-queues" });
  const workersEl = h("div", { id: "overview-workers" });
  const poolsEl = h("div", { id: "overview-pools" });
  // The queue listing is paged by the API (cursor = the last name of the previous page).
  const pager = cursorPager("overview-queues-pager", () => ctx.refreshNow());
  replace(
    root,
    h("h1", {}, "Overview"),
    cards,
    section("Activity", charts),
    section("Queues", queues, pager.el),
    section("Pools", poolsEl, h("p", {}, link("#/pools", "Manage pools"))),
    section("Workers", workersEl, h("p", {}, link("#/workers", "All worker details"))),
  );

  async function refresh() {
    const [queuePage, workerPage, workerStats, poolList] = await Promise.all([
      api.queues(pager.current()),
      api.workers(null, OVERVIEW_WORKERS),
      api.workerStats(),
      loadPools(),
    ]);
    const queueList = queuePage.items;
    pager.update(queuePage);
    // With more queues than one page, the cards and charts add up the queues on this page only.
    const scope = queuePage.total > queueList.length ? " (this page)" : "";
    const stats = await Promise.all(queueList.map((q) => api.queueStats(q.name)));
    const totals = sumCounters(stats.map((s) => s.counters));
    if (stats.length) history.add(Math.max(...stats.map((s) => s.at)), totals);

    const sum = (f) => queueList.reduce((n, q) => n + f(q), 0);
    const ready = sum((q) => q.ready.high + q.ready.medium + q.ready.low);
    const rate = lifetimeSuccessRate(totals);
    renderIfChanged(cards, { queuePage, workerStats, rate }, (el) =>
      replace(
        el,
        card("Queues", fmtNumber(queuePage.total)),
        card(`Ready${scope}`, fmtNumber(ready)),
        card(`In flight${scope}`, fmtNumber(sum((q) => q.in_flight))),
        card(`Delayed${scope}`, fmtNumber(sum((q) => q.delayed))),
        card(`Dead letters${scope}`, link("#/dead-letters", fmtNumber(sum((q) => q.dead_letters)))),
        card("Workers live", fmtNumber(liveWorkers(workerStats))),
        card(`Utilization of ${workerStats.slots} slots`, `${Math.round(workerStats.utilization * 100)} %`),
        card("Success, all time", rate === null ? "—" : `${rate.toFixed(1)} %`),
      ),
    );
    drawCharts(charts);
    renderIfChanged(queues, queueList, (el, data) =>
      replace(el, table("Queues", queueColumns(), data, "No queue has seen a task yet.")),
    );
    renderIfChanged(poolsEl, poolList, (el, data) =>
      replace(el, data.note ? h("p", { class: "empty" }, data.note) : table("Pools", poolColumns, data.pools, "No worker pools yet.")),
    );
    renderIfChanged(workersEl, workerPage, (el, page) =>
      replace(
        el,
        table("Workers", workerColumns, page.items, "No worker has sent a heartbeat recently."),
        page.next ? h("p", { class: "help" }, `The first ${fmtNumber(page.items.length)} of ${fmtNumber(page.total)}.`) : null,
      ),
    );
  }

  return { refresh };
}

function drawCharts(el) {
  replace(el, activityCharts(history));
}
