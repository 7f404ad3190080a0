// One worker pool: its facts (replicas, queues, autoscaling, depth), a scale control, the autoscaling
// form, its events (scaling and health history, newest first) and delete. Each control has its own
// message next to it, where a refusal shows the API's words and the field it names (422), a conflict
// (409) or a read-only key (403).

import { api } from "./api.js";
import { fmtNumber, fmtTime, h, link, renderIfChanged, replace, runAction, section, table } from "./dom.js";
import { autoscalingBody, countValue, desiredText } from "./pool_form.js";
import { replicasSparkline } from "./pools.js";

export function title(params) {
  return `Pool ${params.name}`;
}

function numberField(id, label, attrs = {}) {
  const input = h("input", { id, name: id, type: "number", inputmode: "numeric", step: 1, ...attrs });
  return { input, el: h("div", { class: "field" }, h("label", { for: id }, label), input) };
}

function statusMessage(id) {
  return h("p", { class: "message", role: "status", hidden: true, id });
}

// The WorkerPool's status conditions (kubernetes backend only): written by the operator, shown as text.
const conditionColumns = [
  { label: "Condition", cell: (c) => String(c.type ?? "—"), class: "mono" },
  { label: "Status", cell: (c) => h("span", { class: `badge condition-${c.status === "True" ? "true" : "other"}` }, String(c.status ?? "Unknown")) },
  { label: "Reason", cell: (c) => String(c.reason ?? ""), class: "wrap" },
  { label: "Message", cell: (c) => String(c.message ?? ""), class: "wrap" },
  { label: "Since", cell: (c) => (c.lastTransitionTime ? new Date(c.lastTransitionTime).toLocaleString() : "—") },
];

const eventColumns = [
  { label: "Time", cell: (e) => fmtTime(e.at) },
  { label: "Event", cell: (e) => h("span", { class: "badge" }, e.kind) },
  { label: "Message", cell: (e) => e.message, class: "wrap" },
];

function facts(pool) {
  const s = pool.status || {};
  const auto = pool.autoscaling || {};
  const rows = [
    ["Queues", pool.queues.join(", ")],
    ["Concurrency", fmtNumber(pool.concurrency)],
    ["Desired replicas", desiredText(pool)],
    ["Current / ready", `${fmtNumber(s.current_replicas ?? 0)} / ${fmtNumber(s.ready_replicas ?? 0)}`],
    ["Replicas over time", replicasSparkline(pool)],
    ["Autoscaling", auto.enabled ? `on: ${auto.min_replicas}–${auto.max_replicas}, ${auto.target_tasks_per_replica} tasks per replica` : "off"],
    ["Queue depth", fmtNumber(s.queue_ready)],
    ["In flight", fmtNumber(s.queue_in_flight)],
  ];
  if (s.draining_workers) rows.push(["Draining workers", fmtNumber(s.draining_workers)]);
  if (s.stale_workers) rows.push(["Stale workers", fmtNumber(s.stale_workers)]);
  if (s.workers?.length) rows.push(["Workers", h("span", { class: "mono id" }, s.workers.join(", "))]);
  if (pool.image) rows.push(["Image", pool.image]);
  return rows.flatMap(([label, value]) => [h("dt", {}, label), h("dd", {}, value)]);
}

export function mount(root, params, ctx) {
  const name = params.name;
  const factList = h("dl", { class: "facts", id: "pool-facts" });
  const events = h("div", { id: "pool-events" });
  const conditions = h("div", { id: "pool-conditions" });
  const conditionsSection = section("Conditions", conditions);
  conditionsSection.hidden = true;

  const replicas = numberField("pool-scale-replicas", "Replicas", { min: 0 });
  const scaleMessage = statusMessage("pool-scale-message");
  const enabled = h("input", { id: "pool-auto-enabled", type: "checkbox" });
  const min = numberField("pool-auto-min", "Min replicas", { min: 0 });
  const max = numberField("pool-auto-max", "Max replicas", { min: 1 });
  const target = numberField("pool-auto-target", "Tasks per replica", { min: 1 });
  const autoMessage = statusMessage("pool-auto-message");
  const deleteMessage = statusMessage("pool-delete-message");

  // The forms show the pool's values until the user types; a poll must not overwrite what they typed.
  let edited = false;
  let loaded = null;
  // The controls stay disabled until the pool's values are in them: a click before the first load
  // would otherwise be overwritten by it (unchecking a box that the load then checks again).
  const controls = [replicas.input, enabled, min.input, max.input, target.input];
  for (const input of controls) {
    input.disabled = true;
    input.addEventListener("input", () => {
      edited = true;
    });
  }
  function fill(pool) {
    for (const input of controls) input.disabled = false;
    replicas.input.value = pool.replicas;
    enabled.checked = Boolean(pool.autoscaling?.enabled);
    min.input.value = pool.autoscaling?.min_replicas ?? "";
    max.input.value = pool.autoscaling?.max_replicas ?? "";
    target.input.value = pool.autoscaling?.target_tasks_per_replica ?? "";
  }
  // After an accepted change the forms follow the pool again.
  const afterChange = async () => {
    edited = false;
    await refresh();
  };

  const scaleForm = h(
    "form",
    {
      class: "row inline-form",
      id: "pool-scale-form",
      novalidate: true,
      onsubmit: (event) => {
        event.preventDefault();
        runAction(scaleMessage, `Scale ${name}`, () => api.scalePool(name, countValue(replicas.input.value)), afterChange);
      },
    },
    replicas.el,
    h("button", { type: "submit" }, "Scale"),
  );
  const autoForm = h(
    "form",
    {
      id: "pool-auto-form",
      novalidate: true,
      onsubmit: (event) => {
        event.preventDefault();
        const body = autoscalingBody({
          enabled: enabled.checked,
          min: min.input.value,
          max: max.input.value,
          target: target.input.value,
        });
        runAction(autoMessage, `Autoscaling of ${name}`, () => api.setPoolAutoscaling(name, body), afterChange);
      },
    },
    h("div", { class: "row" }, h("label", { class: "check", for: "pool-auto-enabled" }, enabled, "Autoscale from queue depth")),
    h("div", { class: "row inline-form" }, min.el, max.el, target.el, h("button", { type: "submit" }, "Save autoscaling")),
  );
  const deleteButton = h(
    "button",
    {
      type: "button",
      class: "danger",
      onclick: () => {
        if (!window.confirm(`Delete the pool ${name}? Its workers finish their tasks, then exit.`)) return;
        runAction(deleteMessage, `Delete ${name}`, () => api.deletePool(name), async () => ctx.navigate("#/pools"));
      },
    },
    "Delete pool",
  );

  replace(
    root,
    h("p", {}, link("#/pools", "← All pools")),
    h("h1", {}, `Pool ${name}`),
    section("Status", factList),
    conditionsSection,
    section("Scale", h("p", { class: "help" }, "Holds exactly this many workers and turns autoscaling off."), scaleForm, scaleMessage),
    section("Autoscaling", autoForm, autoMessage),
    section("Events", events),
    section("Delete", deleteButton, deleteMessage),
  );

  async function refresh() {
    const [pool, history] = await Promise.all([api.pool(name), api.poolEvents(name)]);
    if (!edited && JSON.stringify(pool) !== loaded) fill(pool);
    loaded = JSON.stringify(pool);
    renderIfChanged(factList, pool, (el, p) => replace(el, facts(p)));
    const list = Array.isArray(pool.status?.conditions) ? pool.status.conditions.filter((c) => c && typeof c === "object") : [];
    conditionsSection.hidden = list.length === 0;
    renderIfChanged(conditions, list, (el, rows) => replace(el, table(`Conditions of ${name}`, conditionColumns, rows, "")));
    renderIfChanged(events, history.events, (el, list) =>
      replace(el, table(`Events of ${name}`, eventColumns, list, "No events yet.")),
    );
  }

  return { refresh };
}
