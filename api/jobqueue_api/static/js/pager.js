// Previous / Next over one of the API's paged listings (cursor = the last item of the previous page): it
// keeps the cursors of the pages visited so far, the current one last, so Previous can go back.

import { h } from "./dom.js";

export function cursorPager(id, onChange) {
  const starts = [null];
  let nextCursor = null;
  const prev = h("button", { type: "button", class: "secondary" }, "Previous");
  const next = h("button", { type: "button", class: "secondary" }, "Next");
  const el = h("div", { class: "row pager", id }, prev, next);
  prev.addEventListener("click", () => {
    if (starts.length > 1) starts.pop();
    onChange();
  });
  next.addEventListener("click", () => {
    if (nextCursor) starts.push(nextCursor);
    onChange();
  });
  return {
    el,
    // The `after` of the page to show now (null: the first page).
    current: () => starts[starts.length - 1],
    // After a page arrived: its next cursor enables Next; the pager hides while there is one page only.
    update(page) {
      nextCursor = page.next;
      prev.disabled = starts.length === 1;
      next.disabled = !nextCursor;
      el.hidden = starts.length === 1 && !nextCursor;
    },
  };
}
