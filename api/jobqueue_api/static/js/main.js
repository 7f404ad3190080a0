// The single-page shell: hash routing, the live-update loop, the API-key box and the global notice.
// A page is a module exporting `mount(root, params, ctx)` that builds its skeleton once and returns
// `{ refresh }`; the loop calls refresh every POLL_MS while the tab is visible. To add a section, write
// a page module and add one entry to ROUTES (and to NAV if it belongs in the menu).

import { ApiError, getKey, setKey } from "./api.js";
import { showMessage } from "./dom.js";
import { hashPath } from "./hash.js";
import * as analytics from "./analytics.js";
import * as deadLetters from "./dead_letters.js";
import * as overview from "./overview.js";
import * as poolDetail from "./pool_detail.js";
import * as pools from "./pools.js";
import * as queue from "./queue.js";
import * as schedules from "./schedules.js";
import * as taskDetail from "./task_detail.js";
import * as tasks from "./tasks.js";
import * as workers from "./workers.js";

const POLL_MS = 2000;

// Patterns are matched against the hash without "#"; named groups become params.
const ROUTES = [
  { pattern: /^\/?$/, page: overview, nav: "overview" },
  { pattern: /^\/queues\/(?<queue>[^/?]+)$/, page: queue, nav: "overview" },
  { pattern: /^\/tasks(?:\?(?<query>.*))?$/, page: tasks, nav: "tasks" },
  { pattern: /^\/tasks\/(?<id>[^/?]+)$/, page: taskDetail, nav: "tasks" },
  { pattern: /^\/dead-letters(?:\/(?<queue>[^/?]+))?$/, page: deadLetters, nav: "dead-letters" },
  { pattern: /^\/workers$/, page: workers, nav: "workers" },
  { pattern: /^\/pools$/, page: pools, nav: "pools" },
  { pattern: /^\/pools\/(?<name>[^/?]+)$/, page: poolDetail, nav: "pools" },
  { pattern: /^\/schedules$/, page: schedules, nav: "schedules" },
  { pattern: /^\/analytics$/, page: analytics, nav: "analytics" },
];

// loginDismissed: the user closed the key box; 401s then go to the notice instead of reopening it
// every two seconds.
const state = { current: null, timer: null, generation: 0, busy: false, again: false, loginDismissed: false };

const main = document.getElementById("main");
const notice = document.getElementById("notice");
const live = document.getElementById("live");
const login = document.getElementById("login");
const loginForm = document.getElementById("login-form");
const loginMessage = document.getElementById("login-message");
const keyInput = document.getElementById("api-key");
const keyButton = document.getElementById("key-button");

function route() {
  const path = hashPath(location.hash);
  if (path === null) return null;
  for (const r of ROUTES) {
    const match = path.match(r.pattern);
    if (match) return { ...r, params: match.groups || {} };
  }
  return null;
}

function navigate(hash) {
  location.hash = hash;
}

// Errors from polling go to one notice at the top; a later success clears it.
function report(error) {
  // A 401 is explained by the key box, unless the user closed it.
  if (error instanceof ApiError && error.status === 401 && !state.loginDismissed) return;
  const text = error instanceof ApiError ? error.describe() : String(error);
  showMessage(notice, "error", `Cannot update this page: ${text}`);
  live.textContent = `Update failed at ${new Date().toLocaleTimeString()}`;
}

// refreshNow follows a user's action, so it must not be lost behind a poll that is already running.
const ctx = { navigate, report, refreshNow: () => tick(state.generation, true) };

async function tick(generation, afterAction = false) {
  if (generation !== state.generation || !state.current) return;
  if (state.busy) {
    // The refresh in flight may have read the state before the user's action: run once more after it.
    if (afterAction) state.again = true;
    return;
  }
  state.busy = true;
  try {
    await state.current.refresh();
    if (generation === state.generation) {
      showMessage(notice, "", "");
      live.textContent = `Live · updated ${new Date().toLocaleTimeString()}`;
    }
  } catch (error) {
    if (generation === state.generation) report(error);
  } finally {
    // A refresh of a page the user already left must not touch the new page's flags.
    if (generation === state.generation) {
      state.busy = false;
      if (state.again) {
        state.again = false;
        tick(generation);
      }
    }
  }
}

function schedule() {
  clearInterval(state.timer);
  state.timer = setInterval(() => {
    // A hidden tab does not poll: no load on the API for a page nobody looks at.
    if (!document.hidden) tick(state.generation);
  }, POLL_MS);
}

function show() {
  state.generation += 1;
  state.busy = false;
  state.again = false;
  const found = route();
  for (const a of document.querySelectorAll("nav a")) {
    if (found && a.dataset.nav === found.nav) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  main.replaceChildren();
  showMessage(notice, "", "");
  if (!found) {
    state.current = null;
    main.textContent = "There is no such page. Use the menu above.";
    return;
  }
  state.current = found.page.mount(main, found.params, ctx);
  document.title = `${found.page.title(found.params)} · jobqueue`;
  main.focus({ preventScroll: true });
  tick(state.generation);
  schedule();
}

function openLogin(message) {
  state.loginDismissed = false;
  login.hidden = false;
  showMessage(loginMessage, message ? "error" : "", message || "");
  keyInput.focus();
}

function updateKeyButton() {
  keyButton.textContent = getKey() ? "Sign out" : "API key";
}

window.addEventListener("jobqueue:unauthorized", (event) => {
  live.textContent = "Waiting for an API key";
  if (state.loginDismissed) return;
  openLogin(`Sign-in needed: the API answered "${event.detail.message}".`);
});

loginForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const key = keyInput.value.trim();
  if (!key) {
    showMessage(loginMessage, "error", "Enter an API key.");
    return;
  }
  setKey(key);
  keyInput.value = "";
  login.hidden = true;
  updateKeyButton();
  show();
});

document.getElementById("login-cancel").addEventListener("click", () => {
  state.loginDismissed = true;
  login.hidden = true;
});

keyButton.addEventListener("click", () => {
  if (getKey()) {
    setKey("");
    updateKeyButton();
    openLogin("Signed out. Enter an API key to continue.");
    show();
  } else {
    openLogin("");
  }
});

document.addEventListener("visibilitychange", () => {
  if (!document.hidden) tick(state.generation);
});
window.addEventListener("hashchange", show);
updateKeyButton();
show();
