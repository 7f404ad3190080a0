// Task detail: everything the API knows about one task, with cancel and retry.

import { ApiError, api } from "./api.js";
import {
  fmtAge,
  fmtTime,
  h,
  json,
  renderIfChanged,
  replace,
  section,
  showMessage,
  statusBadge,
  table,
  taskLink,
} from "./dom.js";
import { rememberTask } from "./tasks.js";

const FINAL = new Set(["SUCCESS", "FAILED", "TIMEOUT", "CANCELLED", "EXPIRED"]);

export function title(params) {
  return `Task ${params.id}`;
}

function facts(t) {
  const rows = [
    ["Id", h("span", { class: "mono id" }, t.id)],
    ["Queue", h("a", { href: `#/queues/${encodeURIComponent(t.queue)}` }, t.queue)],
    ["Priority", t.priority],
    [
      "Attempts",
      `${t.attempts} (max retries ${t.max_retries ?? "from the queue"}, retries so far ${t.retries})`,
    ],
    ["Lost leases", t.lost_leases],
    ["Worker", t.worker || "—"],
    ["Enqueued", fmtTime(t.enqueued_at)],
    ["Due (eta)", fmtTime(t.eta)],
    ["Expires", t.expires_at ? fmtTime(t.expires_at) : "—"],
    ["Started", fmtTime(t.started_at)],
    ["Completed", fmtTime(t.completed_at)],
    ["Duration", t.duration === null ? "—" : fmtAge(t.duration)],
    ["Timeout", t.timeout ? `${t.timeout} s (soft ${t.soft_timeout ?? "—"} s)` : "—"],
  ];
  if (t.cancel_reason) rows.push(["Cancel reason", t.cancel_reason]);
  if (t.dead_letter_reason) rows.push(["Dead letter reason", t.dead_letter_reason]);
  return h(
    "dl",
    { class: "facts" },
    rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]),
  );
}

function pre(label, value) {
  return h("pre", { class: "code", tabindex: "0", "aria-label": label }, value);
}

// The latest ctx.set_progress of the task: a bar when a total is known, else the count alone.
function progress(p) {
  const text =
    p.total === null || p.total === undefined
      ? `${p.done}`
      : `${p.done} / ${p.total} (${p.total > 0 ? Math.floor((100 * p.done) / p.total) : 100} %)`;
  return section(
    "Progress",
    p.total === null || p.total === undefined
      ? null
      : h("progress", {
          id: "task-progress",
          max: String(p.total),
          value: String(p.done),
          "aria-label": "progress",
        }),
    h("p", { id: "task-progress-text" }, text),
    p.message ? h("p", { id: "task-progress-message" }, p.message) : null,
  );
}

function body(t) {
  const parts = [
    section("Details", facts(t)),
    t.progress ? progress(t.progress) : null,
    section(
      "Arguments",
      h("h3", {}, "args"),
      pre("args", json(t.args)),
      h("h3", {}, "kwargs"),
      pre("kwargs", json(t.kwargs)),
    ),
  ];
  if (t.status === "SUCCESS") parts.push(section("Result", pre("result", json(t.result))));
  if (t.error || t.traceback) {
    parts.push(
      section(
        "Error",
        h("p", { class: "message error", id: "task-error" }, t.error || "—"),
        t.traceback ? pre("traceback", t.traceback) : null,
      ),
    );
  }
  if (t.retry_history && t.retry_history.length) {
    parts.push(
      section(
        "Retry history",
        table(
          "Retry history",
          [
            { label: "Attempt", cell: (r) => r.attempt, class: "num" },
            { label: "At", cell: (r) => fmtTime(r.at) },
            { label: "Error", cell: (r) => r.error },
            {
              label: "Backoff",
              cell: (r) => (r.backoff_seconds === null ? "—" : fmtAge(r.backoff_seconds)),
              class: "num",
            },
            {
              label: "Traceback",
              cell: (r) =>
                r.traceback
                  ? h("details", {}, h("summary", {}, "show"), h("pre", { class: "code" }, r.traceback))
                  : "—",
            },
          ],
          t.retry_history,
          "",
        ),
      ),
    );
  }
  const parents = t.parents || [];
  const children = t.children || [];
  if (parents.length || children.length) {
    parts.push(
      section(
        "Workflow",
        parents.length
          ? [
              h("h3", {}, "Parents"),
              h(
                "ul",
                { class: "ids" },
                parents.map((id) => h("li", {}, taskLink(id))),
              ),
            ]
          : null,
        children.length
          ? [
              h("h3", {}, "Children"),
              h(
                "ul",
                { class: "ids" },
                children.map((id) => h("li", {}, taskLink(id))),
              ),
            ]
          : null,
      ),
    );
  }
  return parts;
}

export function mount(root, params, ctx) {
  const id = params.id;
  const heading = h("h1", { id: "task-heading" }, "Task");
  const status = h("span", { id: "task-status" });
  const force = h("input", { type: "checkbox", id: "cancel-force" });
  const cancelButton = h("button", { type: "button", id: "cancel-button", class: "danger" }, "Cancel task");
  const retryButton = h("button", { type: "button", id: "retry-button" }, "Retry");
  const actions = h(
    "div",
    { class: "row actions" },
    cancelButton,
    h("label", { class: "check", for: "cancel-force" }, force, "Force (kill the running attempt)"),
    retryButton,
  );
  const message = h("p", { class: "message", role: "status", hidden: true, id: "action-message" });
  const content = h("div");
  replace(
    root,
    h("p", { class: "crumbs" }, h("a", { href: "#/tasks" }, "Tasks"), " / detail"),
    heading,
    h("p", {}, "Status: ", status),
    actions,
    message,
    content,
  );
  actions.hidden = true;

  async function act(label, call) {
    showMessage(message, "", "");
    for (const b of [cancelButton, retryButton]) b.disabled = true;
    try {
      await call();
      await ctx.refreshNow();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      showMessage(message, "error", `${label} failed: ${error.describe()}`);
    } finally {
      for (const b of [cancelButton, retryButton]) b.disabled = false;
    }
  }

  cancelButton.addEventListener("click", () =>
    act("Cancel", async () => {
      const result = await api.cancel(id, force.checked);
      const said = {
        cancelled: "Cancelled before it ran.",
        requested: force.checked
          ? "Cancel requested: the worker kills the running attempt."
          : "Cancel requested: the task stops at its next cancellation check.",
        finished: "The task had already finished.",
      };
      showMessage(message, "ok", said[result.outcome] || `Cancel: ${result.outcome}`);
    }),
  );
  retryButton.addEventListener("click", () =>
    act("Retry", async () => {
      const { ids } = await api.retry(id);
      rememberTask(ids[0]);
      if (ids[0] !== id) ctx.navigate(`#/tasks/${encodeURIComponent(ids[0])}`);
      else showMessage(message, "ok", "Replayed from the dead letter queue.");
    }),
  );

  async function refresh() {
    let t;
    try {
      t = await api.task(id);
    } catch (error) {
      if (error instanceof ApiError && (error.status === 404 || error.status === 422)) {
        actions.hidden = true;
        heading.textContent = "Task not found";
        replace(status, "—");
        renderIfChanged(content, error.message, (el) =>
          replace(
            el,
            h(
              "p",
              { class: "message error" },
              `${error.describe()}. A finished task is kept only for its result TTL.`,
            ),
          ),
        );
        return;
      }
      throw error;
    }
    rememberTask(id);
    heading.textContent = `Task ${t.name}`;
    renderIfChanged(status, t.status, (el) => replace(el, statusBadge(t.status)));
    actions.hidden = false;
    cancelButton.hidden = FINAL.has(t.status);
    force.parentElement.hidden = FINAL.has(t.status);
    retryButton.hidden = !FINAL.has(t.status);
    renderIfChanged(content, t, (el, data) => replace(el, body(data)));
  }

  return { refresh };
}
