// Queue page: live depth and counters of one queue, its throughput, and its configuration panels.

import { api } from "./api.js";
import { CounterHistory, activityCharts } from "./charts.js";
import { card, fmtAge, fmtNumber, h, link, renderIfChanged, replace, section } from "./dom.js";
import { flowControlPanel } from "./flow_panel.js";

// Configuration panels, in display order. Each is { title, mount(root, queue, ctx) -> { refresh } }.
const panels = [flowControlPanel];

export function registerQueuePanel(panel) {
  panels.push(panel);
}

const histories = new Map();

export function title(params) {
  return `Queue ${params.queue}`;
}

export function mount(root, params, ctx) {
  const name = params.queue;
  if (!histories.has(name)) histories.set(name, new CounterHistory());
  const history = histories.get(name);
  const cards = h("div", { class: "cards" });
  const counters = h("div", { class: "cards" });
  const chart = h("div", { class: "charts" });
  const mounted = panels.map((panel) => {
    const body = h("div");
    return { el: section(panel.title, body), handle: panel.mount(body, name, ctx) };
  });
  replace(
    root,
    h("p", { class: "crumbs" }, link("#/", "Overview"), " / queue"),
    h("h1", {}, "Queue ", h("span", { class: "mono" }, name)),
    h(
      "p",
      { class: "row toolbar" },
      link(`#/tasks?queue=${encodeURIComponent(name)}`, "Submit a task to this queue", {
        class: "button secondary",
      }),
      link(`#/dead-letters/${encodeURIComponent(name)}`, "Dead letters of this queue", {
        class: "button secondary",
      }),
    ),
    section("Depth", cards),
    section("Counters since the queue was created", counters),
    section("Activity", chart),
    ...mounted.map((m) => m.el),
  );

  async function refresh() {
    const [q, stats] = await Promise.all([api.queue(name), api.queueStats(name)]);
    history.add(stats.at, stats.counters);
    renderIfChanged(cards, q, (el) =>
      replace(
        el,
        card("High", fmtNumber(q.ready.high)),
        card("Medium", fmtNumber(q.ready.medium)),
        card("Low", fmtNumber(q.ready.low)),
        card("Delayed", fmtNumber(q.delayed)),
        card("In flight", fmtNumber(q.in_flight)),
        card("Dead letters", fmtNumber(q.dead_letters)),
        card("Oldest waiting", fmtAge(q.oldest_ready_age_seconds)),
      ),
    );
    const c = stats.counters;
    renderIfChanged(counters, c, (el) =>
      replace(
        el,
        card("Enqueued", fmtNumber(c.enqueued)),
        card("Started", fmtNumber(c.started)),
        card("Succeeded", fmtNumber(c.succeeded)),
        card("Retried", fmtNumber(c.retried)),
        card("Dead-lettered", fmtNumber(c.dead_lettered)),
        card("Cancelled", fmtNumber(c.cancelled)),
        card("Lost leases", fmtNumber(c.lost_leases)),
      ),
    );
    replace(chart, activityCharts(history));
    await Promise.all(mounted.map((m) => m.handle.refresh()));
  }

  return { refresh };
}
