// Dead letters of one queue: counts by task and reason, the list (paged), replay and purge.

import { ApiError, api } from "./api.js";
import {
  fmtNumber,
  fmtTime,
  h,
  renderIfChanged,
  replace,
  section,
  showMessage,
  table,
  taskLink,
} from "./dom.js";

const PAGE = 50;

export function title(params) {
  return params.queue ? `Dead letters of ${params.queue}` : "Dead letters";
}

function countList(label, counts) {
  const entries = Object.entries(counts || {}).sort((a, b) => b[1] - a[1]);
  return h(
    "div",
    { class: "counts" },
    h("h3", {}, label),
    entries.length
      ? h(
          "ul",
          {},
          entries.map(([k, n]) => h("li", {}, h("span", { class: "mono" }, k), `: ${fmtNumber(n)}`)),
        )
      : h("p", { class: "empty" }, "none"),
  );
}

function confirmDialog(text, confirmLabel) {
  // A real <dialog>: focus is trapped while it is open and Escape cancels, like the browser's confirm().
  return new Promise((resolve) => {
    const dialog = h(
      "dialog",
      { class: "confirm", "aria-labelledby": "confirm-text" },
      h(
        "form",
        { method: "dialog" },
        h("p", { id: "confirm-text" }, text),
        h(
          "div",
          { class: "row" },
          h("button", { value: "cancel", class: "secondary", autofocus: true }, "Keep them"),
          h("button", { value: "confirm", class: "danger" }, confirmLabel),
        ),
      ),
    );
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "confirm");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

export function mount(root, params, ctx) {
  let queue = params.queue || null;
  let offset = 0;
  const picker = h("select", { id: "dlq-queue", name: "queue" });
  picker.addEventListener("change", () => ctx.navigate(`#/dead-letters/${encodeURIComponent(picker.value)}`));
  const reset = h("input", { type: "checkbox", id: "dlq-reset" });
  const purgeButton = h("button", { type: "button", class: "danger", id: "dlq-purge" }, "Purge all");
  const message = h("p", { class: "message", role: "status", hidden: true, id: "dlq-message" });
  const stats = h("div", { class: "cards" });
  const list = h("div", { id: "dlq-list" });
  const prev = h("button", { type: "button", class: "secondary" }, "Previous");
  const next = h("button", { type: "button", class: "secondary" }, "Next");
  const pager = h("div", { class: "row pager" }, prev, next);
  prev.addEventListener("click", () => {
    offset = Math.max(0, offset - PAGE);
    ctx.refreshNow();
  });
  next.addEventListener("click", () => {
    offset += PAGE;
    ctx.refreshNow();
  });
  replace(
    root,
    h("h1", {}, "Dead letters"),
    h(
      "div",
      { class: "row toolbar" },
      h("label", { for: "dlq-queue" }, "Queue"),
      picker,
      h("label", { class: "check", for: "dlq-reset" }, reset, "Reset retries on replay"),
      purgeButton,
    ),
    message,
    section("Summary", stats),
    section("Tasks", list, pager),
  );

  async function replay(id) {
    try {
      await api.replay(queue, id, reset.checked);
      showMessage(message, "ok", `Replayed ${id}: it is back in queue ${queue}.`);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      showMessage(message, "error", `Replay failed: ${error.describe()}`);
    }
    await ctx.refreshNow();
  }

  purgeButton.addEventListener("click", async () => {
    const n = stats.dataset.total || "all";
    if (!(await confirmDialog(`Delete ${n} dead letters of queue ${queue}? This cannot be undone.`, "Purge")))
      return;
    try {
      const { purged } = await api.purge(queue);
      showMessage(message, "ok", `Purged ${purged} dead letters from ${queue}.`);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      showMessage(message, "error", `Purge failed: ${error.describe()}`);
    }
    await ctx.refreshNow();
  });

  const columns = [
    { label: "Id", cell: (t) => taskLink(t.id) },
    { label: "Task", cell: (t) => t.name },
    { label: "Reason", cell: (t) => t.dead_letter_reason || "—" },
    { label: "Error", cell: (t) => t.error || "—", class: "wrap" },
    { label: "Attempts", cell: (t) => t.attempts, class: "num" },
    { label: "Died", cell: (t) => fmtTime(t.completed_at) },
    {
      label: "Action",
      cell: (t) =>
        h(
          "button",
          { type: "button", class: "secondary", "aria-label": `Replay ${t.id}`, onclick: () => replay(t.id) },
          "Replay",
        ),
    },
  ];

  async function refresh() {
    // The picker lists the first 1,000 queues by name; a queue further on is reached by its URL.
    const queues = (await api.queues(null, 1000)).items.map((q) => q.name);
    if (!queue) queue = queues[0] || "default";
    renderIfChanged(picker, { queues, queue }, (el) =>
      replace(
        el,
        (queues.includes(queue) ? queues : [queue, ...queues]).map((name) =>
          h("option", { value: name, selected: name === queue }, name),
        ),
      ),
    );
    const [s, items] = await Promise.all([api.deadLetterStats(queue), api.deadLetters(queue, offset, PAGE)]);
    stats.dataset.total = String(s.total);
    purgeButton.disabled = s.total === 0;
    renderIfChanged(stats, s, (el) =>
      replace(
        el,
        h(
          "div",
          { class: "card" },
          h("div", { class: "card-label" }, "Total"),
          h("div", { class: "card-value", id: "dlq-total" }, fmtNumber(s.total)),
        ),
        countList("By task", s.by_task),
        countList("By reason", s.by_reason),
      ),
    );
    prev.disabled = offset === 0;
    next.disabled = items.length < PAGE;
    pager.hidden = offset === 0 && items.length < PAGE;
    renderIfChanged(list, items, (el, data) =>
      replace(el, table(`Dead letters of ${queue}`, columns, data, `No dead letters in queue ${queue}.`)),
    );
  }

  return { refresh };
}
