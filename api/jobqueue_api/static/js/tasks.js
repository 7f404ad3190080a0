// Tasks: search the record (task_search.js), submit a task, open one by id, and follow the tasks this
// browser tab submitted or opened (live from Redis, so they show before the recorder has written them).

import { ApiError, api } from "./api.js";
import {
  fmtTime,
  h,
  renderIfChanged,
  replace,
  section,
  showMessage,
  statusBadge,
  table,
  taskLink,
} from "./dom.js";
import { taskSearch } from "./task_search.js";

const RECENT_STORAGE = "jobqueue.recentTasks";
const RECENT_MAX = 20;
const FINAL = new Set(["SUCCESS", "FAILED", "TIMEOUT", "CANCELLED", "EXPIRED"]);

export function rememberTask(id) {
  const ids = recentIds().filter((x) => x !== id);
  ids.unshift(id);
  sessionStorage.setItem(RECENT_STORAGE, JSON.stringify(ids.slice(0, RECENT_MAX)));
}

function recentIds() {
  try {
    const ids = JSON.parse(sessionStorage.getItem(RECENT_STORAGE) || "[]");
    return Array.isArray(ids) ? ids.filter((x) => typeof x === "string") : [];
  } catch {
    return [];
  }
}

export function title() {
  return "Tasks";
}

function field(label, input, help) {
  const helpEl = help ? h("span", { class: "help", id: `${input.id}-help` }, help) : null;
  if (helpEl) input.setAttribute("aria-describedby", helpEl.id);
  return h("div", { class: "field" }, h("label", { for: input.id }, label), input, helpEl);
}

function buildSubmitForm(defaults) {
  const inputs = {
    name: h("input", {
      id: "task-name",
      name: "name",
      required: true,
      autocomplete: "off",
      spellcheck: "false",
    }),
    args: h("textarea", { id: "task-args", name: "args", rows: 2, spellcheck: "false" }),
    kwargs: h("textarea", { id: "task-kwargs", name: "kwargs", rows: 2, spellcheck: "false" }),
    queue: h("input", { id: "task-queue", name: "queue", autocomplete: "off", spellcheck: "false" }),
    priority: h(
      "select",
      { id: "task-priority", name: "priority" },
      ["high", "medium", "low"].map((p) => h("option", { value: p, selected: p === "medium" }, p)),
    ),
    countdown: h("input", {
      id: "task-countdown",
      name: "countdown",
      type: "number",
      min: "0",
      step: "any",
      inputmode: "decimal",
    }),
    max_retries: h("input", {
      id: "task-max-retries",
      name: "max_retries",
      type: "number",
      min: "0",
      step: "1",
      inputmode: "numeric",
      placeholder: "queue default",
    }),
    timeout: h("input", {
      id: "task-timeout",
      name: "timeout",
      type: "number",
      min: "0",
      step: "any",
      inputmode: "decimal",
    }),
  };
  // An edit clears the field's error mark; the next submit re-checks it.
  for (const input of Object.values(inputs))
    input.addEventListener("input", () => input.removeAttribute("aria-invalid"));
  inputs.args.value = "[]";
  inputs.kwargs.value = "{}";
  inputs.queue.value = defaults.queue || "default";
  inputs.max_retries.value = ""; // empty: the queue's retry default applies when the task fails
  const message = h("p", { class: "message", role: "alert", hidden: true, id: "submit-message" });
  const form = h(
    "form",
    { id: "submit-form", novalidate: true },
    h(
      "div",
      { class: "grid" },
      field("Task name", inputs.name, "As registered with @app.task, e.g. add"),
      field("Queue", inputs.queue),
      field("Args (JSON list)", inputs.args),
      field("Kwargs (JSON object)", inputs.kwargs),
      field("Priority", inputs.priority),
      field("Countdown (seconds)", inputs.countdown, "Optional delay before it may run"),
      field("Max retries", inputs.max_retries),
      field("Timeout (seconds)", inputs.timeout, "Optional hard time limit"),
    ),
    h("div", { class: "row" }, h("button", { type: "submit" }, "Submit task")),
    message,
  );
  return { form, inputs, message };
}

function parseJson(text, kind, fieldName) {
  let value;
  try {
    value = JSON.parse(text.trim() || (kind === "list" ? "[]" : "{}"));
  } catch (exc) {
    throw new ApiError(0, "invalid", `not valid JSON: ${exc.message}`, fieldName);
  }
  const ok =
    kind === "list"
      ? Array.isArray(value)
      : value !== null && typeof value === "object" && !Array.isArray(value);
  if (!ok)
    throw new ApiError(0, "invalid", `must be a JSON ${kind === "list" ? "list" : "object"}`, fieldName);
  return value;
}

function readTask(inputs) {
  const task = {
    name: inputs.name.value.trim(),
    args: parseJson(inputs.args.value, "list", "args"),
    kwargs: parseJson(inputs.kwargs.value, "object", "kwargs"),
    queue: inputs.queue.value.trim() || "default",
    priority: inputs.priority.value,
    max_retries: inputs.max_retries.value === "" ? null : Number(inputs.max_retries.value),
  };
  if (!task.name) throw new ApiError(0, "invalid", "a task name is required", "name");
  if (inputs.countdown.value !== "") task.countdown = Number(inputs.countdown.value);
  if (inputs.timeout.value !== "") task.timeout = Number(inputs.timeout.value);
  return task;
}

// Marks the input the API (or our own check) named, so the error is next to its cause.
function flagField(inputs, fieldName) {
  for (const [name, input] of Object.entries(inputs)) {
    if (name === fieldName) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }
  if (fieldName && inputs[fieldName]) inputs[fieldName].focus();
}

export function mount(root, params, ctx) {
  const query = new URLSearchParams(params.query || "");
  const { form, inputs, message } = buildSubmitForm({ queue: query.get("queue") });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showMessage(message, "", "");
    try {
      const task = readTask(inputs);
      flagField(inputs, null);
      const { ids } = await api.submit(task);
      rememberTask(ids[0]);
      ctx.navigate(`#/tasks/${encodeURIComponent(ids[0])}`);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      flagField(inputs, error.field);
      const text = error.status || !error.field ? error.describe() : `${error.field}: ${error.message}`;
      showMessage(message, "error", `Not submitted: ${text}`);
    }
  });

  const lookupInput = h("input", {
    id: "lookup-id",
    name: "task-id",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "default.0192…",
  });
  const lookup = h(
    "form",
    { id: "lookup-form", class: "row" },
    h("label", { for: "lookup-id" }, "Task id"),
    lookupInput,
    h("button", { type: "submit", class: "secondary" }, "Open"),
  );
  lookup.addEventListener("submit", (event) => {
    event.preventDefault();
    const id = lookupInput.value.trim();
    if (id) ctx.navigate(`#/tasks/${encodeURIComponent(id)}`);
  });

  const recent = h("div", { id: "recent-tasks" });
  const known = new Map(); // id -> last record seen; final ones are not fetched again
  const search = taskSearch(query);
  replace(
    root,
    h("h1", {}, "Tasks"),
    section("Search tasks", search.element),
    section("Submit a task", form),
    section("Find a task", lookup),
    section("Recent tasks in this tab", recent),
  );

  async function refresh() {
    await Promise.all([search.refresh(), refreshRecent()]);
  }

  async function refreshRecent() {
    const ids = recentIds();
    await Promise.all(
      ids
        .filter((id) => !FINAL.has(known.get(id)?.status))
        .map(async (id) => {
          try {
            known.set(id, await api.task(id));
          } catch (error) {
            if (error instanceof ApiError && error.status === 404)
              known.set(id, { id, status: "EXPIRED", name: "—", queue: "—" });
            else throw error;
          }
        }),
    );
    const rows = ids.map((id) => known.get(id)).filter(Boolean);
    renderIfChanged(recent, rows, (el, data) =>
      replace(
        el,
        table(
          "Recent tasks",
          [
            { label: "Id", cell: (t) => taskLink(t.id) },
            { label: "Name", cell: (t) => t.name },
            { label: "Queue", cell: (t) => t.queue },
            { label: "Status", cell: (t) => statusBadge(t.status) },
            { label: "Enqueued", cell: (t) => fmtTime(t.enqueued_at) },
          ],
          data,
          "No task submitted or opened in this tab yet.",
        ),
      ),
    );
  }

  return { refresh };
}
