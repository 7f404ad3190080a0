// DOM helpers. Everything shown comes from the API (task args, errors, tracebacks), so text is always
// set with textContent, never parsed as HTML: a task argument can never become a script.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name in el && typeof value !== "string") el[name] = value;
    else el.setAttribute(name, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// Re-render a region only when its data changed: keeps open <details>, text selection and scroll
// position stable while the page polls every two seconds.
export function renderIfChanged(el, data, render) {
  const digest = JSON.stringify(data);
  if (el.dataset.digest === digest) return;
  el.dataset.digest = digest;
  render(el, data);
}

export function link(href, text, attrs = {}) {
  return h("a", { href, ...attrs }, text);
}

export function taskLink(id) {
  return link(`#/tasks/${encodeURIComponent(id)}`, id, { class: "mono id" });
}

export function fmtAge(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
  return `${Math.floor(seconds / 86400)} d ${Math.floor((seconds % 86400) / 3600)} h`;
}

export function fmtTime(unixSeconds) {
  if (unixSeconds === null || unixSeconds === undefined) return "—";
  return new Date(unixSeconds * 1000).toLocaleString();
}

export function fmtNumber(n) {
  return n === null || n === undefined ? "—" : Number(n).toLocaleString();
}

export function json(value) {
  return JSON.stringify(value, null, 2);
}

export function statusBadge(status) {
  return h("span", { class: `badge status-${String(status).toLowerCase()}` }, status);
}

// A table that turns into labelled cards on a phone (CSS reads data-label for each cell).
export function table(caption, columns, rows, emptyText) {
  if (!rows.length) return h("p", { class: "empty" }, emptyText);
  const head = h(
    "tr",
    {},
    columns.map((c) => h("th", { scope: "col" }, c.label)),
  );
  const body = rows.map((row) =>
    h(
      "tr",
      {},
      columns.map((c) => h("td", { dataset: { label: c.label }, class: c.class || null }, c.cell(row))),
    ),
  );
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "responsive" },
      h("caption", { class: "sr-only" }, caption),
      h("thead", {}, head),
      h("tbody", {}, body),
    ),
  );
}

export function card(label, value, attrs = {}) {
  return h(
    "div",
    { class: "card", ...attrs },
    h("div", { class: "card-label" }, label),
    h("div", { class: "card-value" }, value),
  );
}

export function section(title, ...children) {
  return h("section", { class: "panel", "aria-label": title }, h("h2", {}, title), ...children);
}

// Shows a message in a region that screen readers announce; kind is "error" or "ok".
export function showMessage(el, kind, text) {
  el.className = `message ${kind}`;
  el.textContent = text;
  el.hidden = !text;
}

// Runs an admin action, then says what happened in ``messageEl`` (the API's own message when refused)
// and refreshes the page region that shows its effect.
export async function runAction(messageEl, what, call, refresh) {
  try {
    await call();
    showMessage(messageEl, "ok", `${what}: done`);
    await refresh();
  } catch (error) {
    showMessage(messageEl, "error", error.describe ? error.describe() : String(error));
  }
}
