// Workers: status, heartbeat age, host, queues and the tasks each one is running now.

import { api } from "./api.js";
import {
  card,
  fmtAge,
  fmtNumber,
  h,
  renderIfChanged,
  replace,
  section,
  statusBadge,
  table,
  taskLink,
} from "./dom.js";
import { cursorPager } from "./pager.js";

export function title() {
  return "Workers";
}

const columns = [
  { label: "Worker", cell: (w) => w.id, class: "mono" },
  { label: "Status", cell: (w) => statusBadge(w.status) },
  { label: "Heartbeat", cell: (w) => `${fmtAge(w.heartbeat_age_seconds)} ago`, class: "num" },
  { label: "Host", cell: (w) => `${w.host || "—"}${w.pid ? ` (pid ${w.pid})` : ""}` },
  { label: "Queues", cell: (w) => w.queues.join(", ") },
  { label: "Slots", cell: (w) => `${w.current_tasks.length} / ${w.concurrency}`, class: "num" },
  { label: "Processed", cell: (w) => fmtNumber(w.processed), class: "num" },
  {
    label: "Current tasks",
    cell: (w) =>
      w.current_tasks.length
        ? h(
            "ul",
            { class: "ids" },
            w.current_tasks.map((id) => h("li", {}, taskLink(id))),
          )
        : "idle",
  },
];

export function mount(root, _params, ctx) {
  const cards = h("div", { class: "cards" });
  const list = h("div", { id: "workers-list" });
  // Paged by the API in id order (cursor = the last id of the previous page).
  const pager = cursorPager("workers-pager", () => ctx.refreshNow());
  replace(root, h("h1", {}, "Workers"), cards, section("Workers", list, pager.el));

  async function refresh() {
    const [page, stats] = await Promise.all([api.workers(pager.current()), api.workerStats()]);
    pager.update(page);
    const workers = page.items;
    renderIfChanged(cards, stats, (el, s) =>
      replace(
        el,
        ["ACTIVE", "IDLE", "DRAINING", "DEAD"].map((k) =>
          card(k.toLowerCase(), fmtNumber(s.by_status[k] || 0)),
        ),
        card("Busy slots", `${s.busy} / ${s.slots}`),
        card("Utilization", `${Math.round(s.utilization * 100)} %`),
      ),
    );
    // Heartbeat ages change every poll; the digest includes them, so the table stays current.
    renderIfChanged(list, workers, (el, data) =>
      replace(el, table("Workers", columns, data, "No worker has sent a heartbeat recently.")),
    );
  }

  return { refresh };
}
