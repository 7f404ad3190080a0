// The queue page's flow-control panel: pause / resume, rate limit with its live stats, max in flight.
// Every change goes through the admin API and shows the API's own error message when refused.

import { api } from "./api.js";
import { fmtNumber, h, renderIfChanged, replace, runAction } from "./dom.js";

function numberInput(id, label, attrs = {}) {
  const input = h("input", { id, type: "number", inputmode: "decimal", ...attrs });
  return { input, el: h("div", { class: "field" }, h("label", { for: id }, label), input) };
}

const LEVELS = ["high", "medium", "low"];

function describeLevelRates(rates) {
  const set = LEVELS.filter((level) => rates?.[level]);
  return set.length ? set.map((level) => `${level}: ${describeRate(rates[level])}`).join("; ") : "none";
}

function describeRate(rate) {
  if (!rate) return "none";
  const per = rate.period_seconds === 1 ? "s" : `${rate.period_seconds} s`;
  return `${rate.limit} per ${per}, burst ${rate.burst}${rate.enabled ? "" : " (switched off)"}`;
}

export const flowControlPanel = {
  title: "Flow control",
  mount(root, queue) {
    const facts = h("dl", { class: "facts", id: "flow-facts" });
    const message = h("p", { class: "message", role: "status", hidden: true, id: "flow-message" });
    const limit = numberInput("rate-limit", "Rate limit (tasks)", { min: 1, step: 1 });
    const period = numberInput("rate-period", "Per (seconds)", { min: 0.001, step: "any", value: 60 });
    const burst = numberInput("rate-burst", "Burst", { min: 1, step: 1, value: 1 });
    // Empty: the queue's own limit; a level: that level's limit beside it.
    const level = h(
      "select",
      { id: "rate-level", name: "rate-level" },
      h("option", { value: "" }, "the whole queue"),
      ...LEVELS.map((name) => h("option", { value: name }, `${name} priority only`)),
    );
    const levelField = h("div", { class: "field" }, h("label", { for: "rate-level" }, "Applies to"), level);
    const maxInFlight = numberInput("max-in-flight", "Max in flight (empty: no limit)", { min: 1, step: 1 });

    const act = (what, call) => runAction(message, what, call, refresh);

    const pauseButton = h(
      "button",
      { type: "button", onclick: () => act("Pause", () => api.pause(queue)) },
      "Pause",
    );
    const resumeButton = h(
      "button",
      { type: "button", class: "secondary", onclick: () => act("Resume", () => api.resume(queue)) },
      "Resume",
    );
    const rateForm = h(
      "form",
      {
        class: "row inline-form",
        id: "rate-form",
        novalidate: true, // the API validates and names the field; the browser's bubble would hide that
        onsubmit: (event) => {
          event.preventDefault();
          const body = {
            limit: Number(limit.input.value),
            period_seconds: Number(period.input.value),
            burst: Number(burst.input.value || 1),
          };
          act("Rate limit", () => (level.value ? api.setLevelRateLimit(queue, level.value, body) : api.setRateLimit(queue, body)));
        },
      },
      levelField,
      limit.el,
      period.el,
      burst.el,
      h("button", { type: "submit" }, "Set rate limit"),
      h(
        "button",
        {
          type: "button",
          class: "secondary",
          onclick: () =>
            act("Remove limit", () => (level.value ? api.removeLevelRateLimit(queue, level.value) : api.removeRateLimit(queue))),
        },
        "Remove rate limit",
      ),
    );
    const inFlightForm = h(
      "form",
      {
        class: "row inline-form",
        id: "in-flight-form",
        novalidate: true,
        onsubmit: (event) => {
          event.preventDefault();
          const value = maxInFlight.input.value === "" ? null : Number(maxInFlight.input.value);
          act("Max in flight", () => api.setMaxInFlight(queue, value));
        },
      },
      maxInFlight.el,
      h("button", { type: "submit" }, "Set max in flight"),
    );
    replace(root, facts, h("div", { class: "row" }, pauseButton, resumeButton), rateForm, inFlightForm, message);

    async function refresh() {
      const [config, stats] = await Promise.all([api.queueConfig(queue), api.rateLimitStats(queue)]);
      pauseButton.disabled = config.paused;
      resumeButton.disabled = !config.paused;
      renderIfChanged(facts, { config, stats }, (el) =>
        replace(
          el,
          h("dt", {}, "State"),
          h("dd", { id: "flow-state" }, config.paused ? "paused: nothing is handed out" : "running"),
          h("dt", {}, "Rate limit"),
          h("dd", {}, describeRate(config.rate_limit)),
          h("dt", {}, "Rate limit now"),
          h(
            "dd",
            {},
            config.rate_limit
              ? `${fmtNumber(stats.current_count)} counted, ${fmtNumber(stats.remaining)} may start now` +
                  (stats.wait_seconds > 0 ? `, next in ${stats.wait_seconds.toFixed(2)} s` : "")
              : "—",
          ),
          h("dt", {}, "Per-priority limits"),
          h("dd", { id: "flow-level-limits" }, describeLevelRates(config.priority_rate_limits)),
          h("dt", {}, "Max in flight"),
          h("dd", {}, config.max_in_flight === null ? "no limit" : fmtNumber(config.max_in_flight)),
          h("dt", {}, "Priorities"),
          h("dd", {}, config.priority_policy + (config.weights ? ` ${config.weights.join(":")}` : "")),
        ),
      );
    }

    return { refresh };
  },
};
