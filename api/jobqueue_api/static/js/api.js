// The REST API client: adds the bearer key, turns every non-2xx answer into an ApiError carrying the
// API's JSON error body ({"error", "message", "field"}), and announces 401s so the page can ask for a key.

const KEY_STORAGE = "jobqueue.apiKey";

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field || null;
  }

  // A sentence for people: the API's message, the field it names, and the status for support.
  describe() {
    const where = this.field ? ` (field: ${this.field})` : "";
    return `${this.message}${where} [HTTP ${this.status || "?"} ${this.code}]`;
  }
}

// sessionStorage (not localStorage): the key leaves with the tab, and is never written to disk for long.
export function getKey() {
  return sessionStorage.getItem(KEY_STORAGE) || "";
}

export function setKey(key) {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
}

async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON (a proxy's HTML page, say): fall back to the status line below.
  }
  if (body && typeof body.message === "string") {
    return new ApiError(response.status, body.error || "error", body.message, body.field);
  }
  return new ApiError(response.status, "http_error", response.statusText || "request failed", null);
}

// The answer to one request; a non-2xx answer is thrown as an ApiError.
async function send(method, path, body) {
  const headers = { Accept: "application/json" };
  const key = getKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (exc) {
    throw new ApiError(0, "network", `cannot reach the API: ${exc.message}`, null);
  }
  if (!response.ok) {
    const error = await errorFrom(response);
    if (response.status === 401) {
      window.dispatchEvent(new CustomEvent("jobqueue:unauthorized", { detail: error }));
    }
    throw error;
  }
  return response;
}

export async function request(method, path, body) {
  const response = await send(method, path, body);
  if (response.status === 204) return null;
  return response.json();
}

// A paged listing: the items, the cursor of the next page (null on the last) and the total count, which
// the API sends in the X-Next-Cursor and X-Total-Count headers.
async function requestPage(path) {
  const response = await send("GET", path);
  const total = Number(response.headers.get("X-Total-Count"));
  return { items: await response.json(), next: response.headers.get("X-Next-Cursor"), total };
}

const q = encodeURIComponent;

// One function per endpoint the UI uses, so pages never build URLs by hand.
export const api = {
  // One page of queues in name order, after the cursor `after` (null: the first page).
  queues: (after = null, limit = 100) =>
    requestPage(`/api/v1/queues?limit=${limit}${after ? `&after=${q(after)}` : ""}`),
  queue: (name) => request("GET", `/api/v1/queues/${q(name)}`),
  queueStats: (name) => request("GET", `/api/v1/queues/${q(name)}/stats`),
  task: (id) => request("GET", `/api/v1/tasks/${q(id)}`),
  // query: URLSearchParams of the search filters (the PostgreSQL record's task search).
  searchTasks: (query) => request("GET", `/api/v1/tasks?${query}`),
  submit: (task) => request("POST", "/api/v1/tasks", task),
  cancel: (id, force) => request("POST", `/api/v1/tasks/${q(id)}/cancel`, { force }),
  retry: (id) => request("POST", `/api/v1/tasks/${q(id)}/retry`),
  deadLetters: (queue, offset, limit) =>
    request("GET", `/api/v1/queues/${q(queue)}/dead-letters?offset=${offset}&limit=${limit}`),
  deadLetterStats: (queue) => request("GET", `/api/v1/queues/${q(queue)}/dead-letters/stats`),
  replay: (queue, id, resetRetries) =>
    request("POST", `/api/v1/queues/${q(queue)}/dead-letters/${q(id)}/replay`, {
      reset_retries: resetRetries,
    }),
  purge: (queue) => request("DELETE", `/api/v1/queues/${q(queue)}/dead-letters`),
  queueConfig: (name) => request("GET", `/api/v1/queues/${q(name)}/config`),
  rateLimitStats: (name) => request("GET", `/api/v1/queues/${q(name)}/rate-limit/stats`),
  setRateLimit: (name, body) => request("PUT", `/api/v1/queues/${q(name)}/rate-limit`, body),
  removeRateLimit: (name) => request("DELETE", `/api/v1/queues/${q(name)}/rate-limit`),
  // One priority level's own limit, beside the queue's (a start counts against both).
  setLevelRateLimit: (name, level, body) => request("PUT", `/api/v1/queues/${q(name)}/rate-limit/${q(level)}`, body),
  removeLevelRateLimit: (name, level) => request("DELETE", `/api/v1/queues/${q(name)}/rate-limit/${q(level)}`),
  setMaxInFlight: (name, value) =>
    request("PUT", `/api/v1/queues/${q(name)}/max-in-flight`, { max_in_flight: value }),
  pause: (name) => request("POST", `/api/v1/queues/${q(name)}/pause`),
  resume: (name) => request("POST", `/api/v1/queues/${q(name)}/resume`),
  schedules: () => request("GET", "/api/v1/schedules"),
  createSchedule: (body) => request("POST", "/api/v1/schedules", body),
  pauseSchedule: (name) => request("POST", `/api/v1/schedules/${q(name)}/pause`),
  resumeSchedule: (name) => request("POST", `/api/v1/schedules/${q(name)}/resume`),
  deleteSchedule: (name) => request("DELETE", `/api/v1/schedules/${q(name)}`),
  // The PostgreSQL record's runs of one schedule, newest fire time first (503 without a record).
  scheduleRuns: (name, offset, limit) =>
    request("GET", `/api/v1/schedules/${q(name)}/runs?offset=${offset}&limit=${limit}`),
  // The PostgreSQL record's analytics (503 without a record): window stats with a per-queue and per-task
  // breakdown, and the stored hourly / daily buckets (the API's default ranges).
  metrics: (windowSeconds) => request("GET", `/api/v1/metrics?window=${windowSeconds}`),
  metricsHourly: () => request("GET", "/api/v1/metrics/hourly"),
  metricsDaily: () => request("GET", "/api/v1/metrics/daily"),
  // One page of workers in id order, after the cursor `after` (null: the first page).
  workers: (after = null, limit = 200) =>
    requestPage(`/api/v1/workers?limit=${limit}${after ? `&after=${q(after)}` : ""}`),
  workerStats: () => request("GET", "/api/v1/workers/stats"),
  // Worker pools: {"backend", "pools"}; 409 pools_not_configured when the API has no pool backend.
  pools: () => request("GET", "/api/v1/worker-pools"),
  pool: (name) => request("GET", `/api/v1/worker-pools/${q(name)}`),
  createPool: (body) => request("POST", "/api/v1/worker-pools", body),
  scalePool: (name, replicas) => request("POST", `/api/v1/worker-pools/${q(name)}/scale`, { replicas }),
  setPoolAutoscaling: (name, body) => request("PUT", `/api/v1/worker-pools/${q(name)}/autoscaling`, body),
  deletePool: (name) => request("DELETE", `/api/v1/worker-pools/${q(name)}`),
  poolEvents: (name) => request("GET", `/api/v1/worker-pools/${q(name)}/events`),
};
