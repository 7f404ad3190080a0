// Pools: every worker pool with its desired / ready replicas, queues, concurrency, autoscaling, and the
// depth and in-flight of its queues; a form to create one. A pool's own page (pool_detail.js) scales it,
// sets its autoscaling, shows its events and deletes it. Pool names and queue names come from users:
// like everything else they are rendered as text (dom.js), never as HTML.

import { api } from "./api.js";
import { fmtNumber, h, link, renderIfChanged, replace, runAction, section, showMessage, table } from "./dom.js";
import { createPoolBody, desiredText } from "./pool_form.js";
import { sparkline } from "./time_charts.js";

export function title() {
  return "Pools";
}

export function poolHref(name) {
  return `#/pools/${encodeURIComponent(name)}`;
}

// The pool's current replicas over the samples the API kept (status.replica_history), as a sparkline
// whose accessible name says the range in words.
export function replicasSparkline(pool) {
  const samples = pool.status?.replica_history || [];
  const values = samples.map((s) => s.current);
  if (!values.length) return "—";
  const minutes = Math.max(0, Math.round((samples[samples.length - 1].at - samples[0].at) / 60));
  const label =
    values.length > 1
      ? `Replicas of ${pool.name}: ${values[0]} to ${values[values.length - 1]} over ${minutes} min`
      : `Replicas of ${pool.name}: ${values[0]}`;
  return sparkline(values, label);
}

const columns = [
  { label: "Pool", cell: (p) => link(poolHref(p.name), p.name, { class: "mono id" }) },
  { label: "Queues", cell: (p) => p.queues.join(", "), class: "wrap" },
  { label: "Concurrency", cell: (p) => fmtNumber(p.concurrency), class: "num" },
  { label: "Desired", cell: desiredText, class: "num" },
  { label: "Ready", cell: (p) => fmtNumber(p.status?.ready_replicas ?? 0), class: "num" },
  { label: "Replicas over time", cell: replicasSparkline },
  {
    label: "Autoscaling",
    cell: (p) =>
      h("span", { class: `badge ${p.autoscaling?.enabled ? "status-active" : "status-idle"}` }, p.autoscaling?.enabled ? "on" : "off"),
  },
  { label: "Queue depth", cell: (p) => fmtNumber(p.status?.queue_ready), class: "num" },
  { label: "In flight", cell: (p) => fmtNumber(p.status?.queue_in_flight), class: "num" },
];

function field(id, label, attrs = {}, help = null) {
  const input = h("input", { id, name: id, autocomplete: "off", ...attrs });
  return {
    input,
    el: h("div", { class: "field" }, h("label", { for: id }, label), input, help ? h("p", { class: "help" }, help) : null),
  };
}

function createForm(message, onCreated) {
  const name = field("pool-name", "Pool name", { required: true, spellcheck: "false" }, "Lower-case letters, digits and -");
  const queues = field("pool-queues", "Queues", { required: true, spellcheck: "false" }, "Comma-separated, e.g. emails, receipts");
  const concurrency = field("pool-concurrency", "Concurrency", { type: "number", min: 1, step: 1, value: 4 }, "Tasks at once per worker");
  const replicas = field("pool-replicas", "Replicas", { type: "number", min: 0, step: 1, value: 1 });
  const autoscaling = h("input", { id: "pool-autoscaling", type: "checkbox" });
  const min = field("pool-min", "Min replicas", { type: "number", min: 0, step: 1, value: 1 });
  const max = field("pool-max", "Max replicas", { type: "number", min: 1, step: 1, value: 10 });
  const target = field("pool-target", "Tasks per replica", { type: "number", min: 1, step: 1, value: 10 });
  const bounds = h("div", { class: "grid", hidden: true }, min.el, max.el, target.el);
  autoscaling.addEventListener("change", () => {
    bounds.hidden = !autoscaling.checked;
  });
  return h(
    "form",
    {
      id: "pool-form",
      novalidate: true, // the API names the refused field; the browser's bubble would hide that
      onsubmit: (event) => {
        event.preventDefault();
        const body = createPoolBody({
          name: name.input.value,
          queues: queues.input.value,
          concurrency: concurrency.input.value,
          replicas: replicas.input.value,
          autoscaling: autoscaling.checked,
          min: min.input.value,
          max: max.input.value,
          target: target.input.value,
        });
        runAction(message, `Create ${body.name}`, () => api.createPool(body), () => onCreated(body.name));
      },
    },
    h("div", { class: "grid" }, name.el, queues.el, concurrency.el, replicas.el),
    h("div", { class: "row" }, h("label", { class: "check", for: "pool-autoscaling" }, autoscaling, "Autoscale from queue depth")),
    bounds,
    h("div", { class: "row" }, h("button", { type: "submit" }, "Create pool")),
  );
}

export function mount(root, _params, ctx) {
  const backend = h("p", { class: "help", id: "pools-backend" });
  const list = h("div", { id: "pools-list" });
  const message = h("p", { class: "message", role: "status", hidden: true, id: "pool-form-message" });
  const form = createForm(message, (name) => ctx.navigate(poolHref(name)));
  replace(root, h("h1", {}, "Pools"), backend, section("All pools", list), section("New pool", form, message));

  async function refresh() {
    let answer;
    try {
      answer = await api.pools();
    } catch (error) {
      // No pool backend is a configuration, not a failure to update: say so in place, keep polling quiet.
      if (error.status !== 409) throw error;
      showMessage(backend, "error", error.describe());
      replace(list);
      delete list.dataset.digest;
      return;
    }
    showMessage(backend, "", `Backend: ${answer.backend}`);
    backend.className = "help";
    renderIfChanged(list, answer.pools, (el, pools) =>
      replace(el, table("Worker pools", columns, pools, "No pools yet: create one below.")),
    );
  }

  return { refresh };
}
