// Schedules: recurring (cron) tasks with their last and next fire, pause / resume / delete, a form to
// create one, and the run history of one schedule from the PostgreSQL record (fired, skipped, missed,
// failed). Times are shown in the browser's zone; each schedule fires in its own IANA zone.

import { api } from "./api.js";
import { fmtNumber, h, renderIfChanged, replace, runAction, section, showMessage, table, taskLink } from "./dom.js";

const RUNS_PER_PAGE = 20;
// Runs come from the record, which changes only as the recorder writes: the page's 2 s poll asks for them
// again at most this often (showing a schedule or paging asks at once).
const RUNS_REFRESH_MS = 5000;

export function title() {
  return "Schedules";
}

function fmtIso(iso) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

function input(id, attrs = {}) {
  return h("input", { id, name: id, ...attrs });
}

// What a run's outcome means, in words, next to the task it concerns.
function runNote(run) {
  if (run.status === "fired" && run.replaced_task_id) return ["replaced ", taskLink(run.replaced_task_id)];
  if (run.status === "missed") return `${fmtNumber(run.missed)} fire time(s) missed from here (past the deadline)`;
  if (run.status === "skipped") return run.detail || "the previous run was still going (Forbid)";
  return run.detail || "";
}

const RUN_COLUMNS = [
  { label: "Fire time", cell: (r) => fmtIso(r.fire_time) },
  { label: "Outcome", cell: (r) => h("span", { class: `badge run-${r.status}` }, r.status) },
  { label: "Task", cell: (r) => (r.task_id ? taskLink(r.task_id) : "—") },
  { label: "Note", cell: runNote, class: "wrap" },
  { label: "Handled", cell: (r) => fmtIso(r.handled_at) },
];

// The run history panel: one schedule at a time, paged by the server, refreshed with the page.
function runHistory() {
  const heading = h("h2", { id: "schedule-runs-heading" }, "Run history");
  const message = h("p", { class: "message", role: "status", hidden: true, id: "schedule-runs-message" });
  const list = h("div", { id: "schedule-runs" });
  const newer = h("button", { type: "button", class: "secondary", disabled: true }, "Newer runs");
  const older = h("button", { type: "button", class: "secondary", disabled: true }, "Older runs");
  const panel = h(
    "section",
    { class: "panel", "aria-labelledby": "schedule-runs-heading", hidden: true, id: "schedule-runs-panel" },
    heading,
    message,
    list,
    h("div", { class: "row" }, newer, older),
  );
  let name = null;
  let offset = 0;
  let loadedAt = 0;

  async function load() {
    if (name === null) return;
    loadedAt = Date.now();
    let page;
    try {
      page = await api.scheduleRuns(name, offset, RUNS_PER_PAGE);
    } catch (error) {
      const hint = error.status === 503 ? " The run history reads the PostgreSQL record." : "";
      showMessage(message, "error", `${error.describe ? error.describe() : String(error)}${hint}`);
      replace(list);
      delete list.dataset.digest;
      return;
    }
    showMessage(message, "ok", "");
    newer.disabled = offset === 0;
    older.disabled = !page.has_more;
    renderIfChanged(list, page, (el, data) =>
      replace(
        el,
        data.items.length
          ? h("p", { class: "help", id: "schedule-runs-range" }, `Runs ${offset + 1} to ${offset + data.items.length}`)
          : null,
        table(`Runs of ${name}`, RUN_COLUMNS, data.items, offset ? "No older runs." : "No recorded run yet."),
      ),
    );
  }

  newer.addEventListener("click", () => {
    offset = Math.max(0, offset - RUNS_PER_PAGE);
    load();
  });
  older.addEventListener("click", () => {
    offset += RUNS_PER_PAGE;
    load();
  });

  return {
    panel,
    refresh: () => (Date.now() - loadedAt >= RUNS_REFRESH_MS ? load() : undefined),
    show(scheduleName) {
      name = scheduleName;
      offset = 0;
      heading.textContent = `Run history of ${scheduleName}`;
      panel.hidden = false;
      delete list.dataset.digest;
      replace(list);
      return load().then(() => heading.scrollIntoView({ block: "nearest" }));
    },
  };
}

function field(label, control, help) {
  return h(
    "div",
    { class: "field" },
    h("label", { for: control.id }, label),
    control,
    help ? h("p", { class: "help" }, help) : null,
  );
}

export function mount(root) {
  const message = h("p", { class: "message", role: "status", hidden: true, id: "schedule-message" });
  const list = h("div", { id: "schedule-list" });
  const inputs = {
    name: input("schedule-name", { required: true, autocomplete: "off" }),
    cron: input("schedule-cron", { required: true, value: "*/5 * * * *", autocomplete: "off" }),
    task: input("schedule-task", { required: true, autocomplete: "off" }),
    timezone: input("schedule-timezone", { value: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC" }),
    args: input("schedule-args", { value: "[]", class: "mono" }),
    queue: input("schedule-queue", { value: "default" }),
    policy: h(
      "select",
      { id: "schedule-policy" },
      ["Allow", "Forbid", "Replace"].map((p) => h("option", { value: p }, p)),
    ),
  };

  const act = (what, call) => runAction(message, what, call, refresh);
  const runs = runHistory();

  const form = h(
    "form",
    {
      id: "schedule-form",
      novalidate: true,
      onsubmit: (event) => {
        event.preventDefault();
        let args;
        try {
          args = JSON.parse(inputs.args.value || "[]");
        } catch (exc) {
          showMessage(message, "error", `args: not valid JSON (${exc.message})`);
          return;
        }
        act(`Schedule ${inputs.name.value}`, () =>
          api.createSchedule({
            name: inputs.name.value,
            cron: inputs.cron.value,
            task: inputs.task.value,
            timezone: inputs.timezone.value,
            args,
            queue: inputs.queue.value,
            concurrency_policy: inputs.policy.value,
          }),
        );
      },
    },
    h(
      "div",
      { class: "grid" },
      field("Schedule name", inputs.name),
      field("Cron", inputs.cron, "5 fields, 6 with seconds first, or @hourly / @daily / @weekly / @monthly"),
      field("Task", inputs.task, "A registered task name, e.g. add"),
      field("Time zone", inputs.timezone, "IANA name, e.g. America/New_York"),
      field("Args (JSON list)", inputs.args),
      field("Queue", inputs.queue),
      field("Concurrency policy", inputs.policy),
    ),
    h("button", { type: "submit" }, "Save schedule"),
  );

  const columns = [
    { label: "Name", cell: (s) => s.name, class: "mono" },
    // Declared with @app.periodic (synced by the scheduler) or registered here / over the API; a code
    // schedule the code no longer declares is paused and flagged, not deleted (docs/schedules.md).
    {
      label: "Source",
      cell: (s) =>
        s.orphaned
          ? h(
              "span",
              { class: "badge status-expired", title: "no longer declared in code: paused" },
              "code, orphaned",
            )
          : s.source || "api",
    },
    { label: "Cron", cell: (s) => `${s.cron} (${s.timezone})`, class: "mono" },
    { label: "Task", cell: (s) => `${s.task} → ${s.queue}` },
    { label: "Next fire", cell: (s) => (s.paused ? "paused" : fmtIso(s.next_fire_at)) },
    { label: "Last fire", cell: (s) => fmtIso(s.last_fire_at) },
    { label: "Last task", cell: (s) => (s.last_task_id ? taskLink(s.last_task_id) : "—") },
    { label: "Fired", cell: (s) => fmtNumber(s.fired), class: "num" },
    {
      label: "Actions",
      cell: (s) =>
        h(
          "div",
          { class: "row" },
          h(
            "button",
            { type: "button", class: "secondary", onclick: () => runs.show(s.name) },
            `Runs of ${s.name}`,
          ),
          s.paused
            ? h(
                "button",
                { type: "button", class: "secondary", onclick: () => act(`Resume ${s.name}`, () => api.resumeSchedule(s.name)) },
                `Resume ${s.name}`,
              )
            : h(
                "button",
                { type: "button", class: "secondary", onclick: () => act(`Pause ${s.name}`, () => api.pauseSchedule(s.name)) },
                `Pause ${s.name}`,
              ),
          h(
            "button",
            {
              type: "button",
              class: "danger",
              onclick: () => {
                if (window.confirm(`Delete the schedule ${s.name}? Tasks it created are kept.`)) {
                  act(`Delete ${s.name}`, () => api.deleteSchedule(s.name));
                }
              },
            },
            `Delete ${s.name}`,
          ),
        ),
    },
  ];

  replace(
    root,
    h("h1", {}, "Schedules"),
    message,
    section("All schedules", list),
    runs.panel,
    section("New schedule", form),
  );

  async function refresh() {
    const schedules = await api.schedules();
    renderIfChanged(list, schedules, (el, data) =>
      replace(el, table("Schedules", columns, data, "No schedules yet: create one below.")),
    );
    await runs.refresh();
  }

  return { refresh };
}
