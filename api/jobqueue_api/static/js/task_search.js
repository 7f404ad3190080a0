// Task search over the PostgreSQL record: GET /api/v1/tasks with status, name, queue, time range, error
// text, sort and paging, all done by the server. The filters live in the page's hash
// (#/tasks?status=FAILED&error=timeout&offset=20), so a search is a link that can be shared or reloaded.

import { ApiError, api } from "./api.js";
import { h, renderIfChanged, replace, showMessage, statusBadge, table, taskLink } from "./dom.js";

const STATUSES = [
  "PENDING",
  "QUEUED",
  "DELAYED",
  "RUNNING",
  "RETRYING",
  "SUCCESS",
  "FAILED",
  "TIMEOUT",
  "CANCELLED",
  "EXPIRED",
];
const SORTS = [
  ["-enqueued_at", "Newest first"],
  ["enqueued_at", "Oldest first"],
  ["-completed_at", "Recently finished"],
  ["-duration_ms", "Longest run"],
  ["name", "Name"],
];
const PAGE_SIZE = 20;
// The record changes as the recorder writes; a shown page is searched again at most this often.
const RESEARCH_MS = 5000;
const TEXT_FILTERS = ["name", "queue", "error"];

function field(label, input) {
  return h("div", { class: "field" }, h("label", { for: input.id }, label), input);
}

// datetime-local has no zone: the browser's local time, sent as an ISO instant with its offset.
function toIso(local) {
  if (!local) return null;
  const date = new Date(local);
  return Number.isNaN(date.getTime()) ? local : date.toISOString();
}

function toLocalInput(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const local = new Date(date.getTime() - date.getTimezoneOffset() * 60000);
  return local.toISOString().slice(0, 16);
}

function fmtIso(iso) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

function fmtDuration(ms) {
  if (ms === null || ms === undefined) return "—";
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
}

function firstLine(text, max = 90) {
  if (!text) return "";
  const line = String(text).split("\n")[0];
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

function buildForm() {
  const inputs = {
    name: h("input", { id: "search-name", name: "name", autocomplete: "off", spellcheck: "false" }),
    queue: h("input", { id: "search-queue", name: "queue", autocomplete: "off", spellcheck: "false" }),
    error: h("input", { id: "search-error", name: "error", autocomplete: "off", spellcheck: "false" }),
    since: h("input", { id: "search-since", name: "since", type: "datetime-local" }),
    until: h("input", { id: "search-until", name: "until", type: "datetime-local" }),
    time_field: h(
      "select",
      { id: "search-time-field", name: "time_field" },
      h("option", { value: "enqueued_at" }, "Enqueued"),
      h("option", { value: "completed_at" }, "Finished"),
    ),
    sort: h(
      "select",
      { id: "search-sort", name: "sort" },
      SORTS.map(([value, label]) => h("option", { value }, label)),
    ),
  };
  const statusBoxes = STATUSES.map((s) =>
    h("input", { type: "checkbox", id: `search-status-${s.toLowerCase()}`, value: s }),
  );
  for (const input of Object.values(inputs))
    input.addEventListener("input", () => input.removeAttribute("aria-invalid"));
  const message = h("p", { class: "message", role: "alert", hidden: true, id: "search-message" });
  const form = h(
    "form",
    { id: "search-form", novalidate: true, role: "search" },
    h(
      "fieldset",
      { class: "statuses" },
      h("legend", {}, "Status"),
      statusBoxes.map((box) => h("label", { class: "check", for: box.id }, box, box.value)),
    ),
    h(
      "div",
      { class: "grid" },
      field("Task name is", inputs.name),
      field("In queue", inputs.queue),
      field("Error contains", inputs.error),
      field("From", inputs.since),
      field("Until", inputs.until),
      field("Time range applies to", inputs.time_field),
      field("Sort", inputs.sort),
    ),
    h(
      "div",
      { class: "row" },
      h("button", { type: "submit" }, "Search"),
      h("button", { type: "reset", class: "secondary" }, "Clear filters"),
    ),
    message,
  );
  return { form, inputs, statusBoxes, message };
}

// The filters as the API's query string (empty ones left out); offset only when not on the first page.
function toQuery(filters) {
  const query = new URLSearchParams();
  for (const s of filters.status) query.append("status", s);
  for (const key of [...TEXT_FILTERS, "since", "until"]) if (filters[key]) query.set(key, filters[key]);
  if (filters.since || filters.until) query.set("time_field", filters.time_field);
  if (filters.sort !== SORTS[0][0]) query.set("sort", filters.sort);
  if (filters.offset) query.set("offset", String(filters.offset));
  return query;
}

function fromQuery(query) {
  return {
    status: query.getAll("status").filter((s) => STATUSES.includes(s)),
    name: query.get("name") || "",
    queue: query.get("queue") || "",
    error: query.get("error") || "",
    since: query.get("since") || "",
    until: query.get("until") || "",
    time_field: query.get("time_field") === "completed_at" ? "completed_at" : "enqueued_at",
    sort: SORTS.some(([v]) => v === query.get("sort")) ? query.get("sort") : SORTS[0][0],
    offset: Math.max(0, Number.parseInt(query.get("offset") || "0", 10) || 0),
  };
}

// Builds the search section; `initialQuery` is the page's hash query. Returns { element, refresh }.
export function taskSearch(initialQuery) {
  const { form, inputs, statusBoxes, message } = buildForm();
  const results = h("div", { id: "search-results", "aria-live": "polite" });
  const pager = h("div", { class: "row pager", id: "search-pager" });
  let filters = fromQuery(initialQuery);
  let lastRun = 0;

  function fill() {
    for (const box of statusBoxes) box.checked = filters.status.includes(box.value);
    for (const key of TEXT_FILTERS) inputs[key].value = filters[key];
    inputs.since.value = filters.since ? toLocalInput(filters.since) : "";
    inputs.until.value = filters.until ? toLocalInput(filters.until) : "";
    inputs.time_field.value = filters.time_field;
    inputs.sort.value = filters.sort;
  }

  function read() {
    return {
      status: statusBoxes.filter((b) => b.checked).map((b) => b.value),
      name: inputs.name.value.trim(),
      queue: inputs.queue.value.trim(),
      error: inputs.error.value.trim(),
      since: toIso(inputs.since.value),
      until: toIso(inputs.until.value),
      time_field: inputs.time_field.value,
      sort: inputs.sort.value,
      offset: 0,
    };
  }

  // Marks the input the API's error names (422 bodies name their field).
  function flag(fieldName) {
    for (const [name, input] of Object.entries(inputs)) {
      if (name === fieldName) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    }
  }

  async function run() {
    lastRun = Date.now();
    const query = toQuery(filters);
    query.set("limit", String(PAGE_SIZE));
    let page;
    try {
      page = await api.searchTasks(query);
    } catch (error) {
      if (!(error instanceof ApiError) || error.status === 401) throw error;
      flag(error.field);
      const hint =
        error.status === 503 ? " Search reads the PostgreSQL record; the sections below work without it." : "";
      showMessage(message, "error", `Search failed: ${error.describe()}${hint}`);
      renderIfChanged(results, null, (el) => replace(el));
      replace(pager);
      return;
    }
    flag(null);
    showMessage(message, "", "");
    renderIfChanged(results, page, (el, data) =>
      replace(
        el,
        table(
          "Tasks found",
          [
            { label: "Id", cell: (t) => taskLink(t.id) },
            { label: "Name", cell: (t) => t.name || "—" },
            { label: "Queue", cell: (t) => t.queue },
            { label: "Status", cell: (t) => statusBadge(t.status || "?") },
            { label: "Enqueued", cell: (t) => fmtIso(t.enqueued_at) },
            { label: "Run time", cell: (t) => fmtDuration(t.duration_ms) },
            { label: "Error", cell: (t) => firstLine(t.error), class: "error-cell" },
          ],
          data.items,
          filters.offset ? "No more tasks match." : "No recorded task matches these filters.",
        ),
      ),
    );
    renderPager(page);
  }

  function renderPager(page) {
    const first = page.items.length ? filters.offset + 1 : filters.offset;
    const last = filters.offset + page.items.length;
    const go = (offset) => () => {
      filters = { ...filters, offset };
      remember();
      run();
    };
    replace(
      pager,
      h(
        "button",
        {
          type: "button",
          class: "secondary",
          disabled: filters.offset === 0,
          onclick: go(Math.max(0, filters.offset - PAGE_SIZE)),
        },
        "Previous page",
      ),
      h("span", { id: "search-range" }, page.items.length ? `Tasks ${first} to ${last}` : ""),
      h(
        "button",
        { type: "button", class: "secondary", disabled: !page.has_more, onclick: go(last) },
        "Next page",
      ),
    );
  }

  // The filters go into the hash without a hashchange (which would rebuild the page).
  function remember() {
    const query = toQuery(filters).toString();
    history.replaceState(null, "", query ? `#/tasks?${query}` : "#/tasks");
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    filters = read();
    remember();
    run();
  });
  form.addEventListener("reset", () => {
    // After the browser has cleared the inputs.
    setTimeout(() => {
      filters = read();
      remember();
      run();
    });
  });
  fill();

  return {
    element: h("div", {}, form, results, pager),
    // First call runs the search from the link; later ones search again now and then (new records).
    refresh: async () => {
      if (Date.now() - lastRun >= RESEARCH_MS) await run();
    },
  };
}
