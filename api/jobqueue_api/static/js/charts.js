// Small inline-SVG line charts, drawn from samples the page collects while it polls. No chart library:
// the UI must run with no build step and the Content-Security-Policy allows only our own scripts.

const SVG = "http://www.w3.org/2000/svg";
const HTML = "http://www.w3.org/1999/xhtml";
// The drawing is scaled to its box, text included; a narrower drawing on a phone keeps labels readable.
function size() {
  return window.innerWidth < 640 ? { WIDTH: 300, HEIGHT: 130 } : { WIDTH: 480, HEIGHT: 150 };
}
const PAD = { top: 8, right: 8, bottom: 18, left: 36 };

function el(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

// points: [{t: unix seconds, v: number|null}], oldest first; null values leave a gap.
// format(v) renders axis and summary values; fixedMax pins the scale (100 for percentages).
// minMax keeps an idle chart from magnifying noise: the scale never goes below it.
export function lineChart({ title, points, format, fixedMax, minMax = 1, emptyText }) {
  const { WIDTH, HEIGHT } = size();
  const known = points.filter((p) => p.v !== null && Number.isFinite(p.v));
  const latest = known.length ? known[known.length - 1].v : null;
  const summary = latest === null ? emptyText : `${title}: ${format(latest)} (latest)`;
  const svg = el("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", class: "chart" });
  svg.setAttribute("aria-label", summary);
  const titleEl = el("title", {});
  titleEl.textContent = summary;
  svg.append(titleEl);

  const max = fixedMax ?? Math.max(minMax, ...known.map((p) => p.v * 1.15));
  const innerW = WIDTH - PAD.left - PAD.right;
  const innerH = HEIGHT - PAD.top - PAD.bottom;
  const y = (v) => PAD.top + innerH - (v / max) * innerH;
  for (const frac of [0, 0.5, 1]) {
    const gy = y(max * frac);
    svg.append(el("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: gy, y2: gy, class: "grid" }));
    const label = el("text", { x: PAD.left - 4, y: gy + 3, class: "axis", "text-anchor": "end" });
    label.textContent = format(max * frac);
    svg.append(label);
  }
  if (points.length >= 2) {
    const t0 = points[0].t;
    const span = Math.max(1e-9, points[points.length - 1].t - t0);
    const x = (t) => PAD.left + ((t - t0) / span) * innerW;
    let d = "";
    let pen = false;
    for (const p of points) {
      if (p.v === null || !Number.isFinite(p.v)) {
        pen = false;
        continue;
      }
      d += `${pen ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`;
      pen = true;
    }
    if (d) svg.append(el("path", { d, class: "line" }));
    // A dot on the latest value, so a single sample (or a flat line on a grid line) is still visible.
    const last = [...points].reverse().find((p) => p.v !== null && Number.isFinite(p.v));
    if (last)
      svg.append(el("circle", { cx: x(last.t).toFixed(1), cy: y(last.v).toFixed(1), r: 3.5, class: "dot" }));
    const ago = el("text", { x: PAD.left, y: HEIGHT - 4, class: "axis" });
    ago.textContent = `${Math.round(span)} s ago`;
    const now = el("text", { x: WIDTH - PAD.right, y: HEIGHT - 4, class: "axis", "text-anchor": "end" });
    now.textContent = "now";
    svg.append(ago, now);
  }
  return { svg, summary };
}

// Turns successive reads of lifetime counters into per-interval rates, like Prometheus' rate().
export class CounterHistory {
  constructor(limit = 90) {
    this.limit = limit;
    this.samples = [];
  }

  add(at, counters) {
    const last = this.samples[this.samples.length - 1];
    if (last && at <= last.at) return;
    this.samples.push({ at, counters });
    if (this.samples.length > this.limit) this.samples.shift();
  }

  // Finished tasks per second: successes plus final failures plus cancellations.
  throughput() {
    return this.#pairs((a, b, dt) => (finished(b) - finished(a)) / dt);
  }

  // Share of finished attempts that succeeded in each interval (a retried failure counts as a failure).
  successRate() {
    return this.#pairs((a, b) => {
      const ok = b.succeeded - a.succeeded;
      const all = ok + (b.retried - a.retried) + (b.dead_lettered - a.dead_lettered);
      return all > 0 ? (100 * ok) / all : null;
    });
  }

  #pairs(fn) {
    const out = [];
    for (let i = 1; i < this.samples.length; i++) {
      const a = this.samples[i - 1];
      const b = this.samples[i];
      out.push({ t: b.at, v: fn(a.counters, b.counters, b.at - a.at) });
    }
    return out;
  }
}

function finished(c) {
  return c.succeeded + c.dead_lettered + c.cancelled;
}

// Sums the counters of several queues into one set (the overview charts cover all queues).
export function sumCounters(list) {
  const total = {};
  for (const counters of list) {
    for (const [k, v] of Object.entries(counters)) total[k] = (total[k] || 0) + v;
  }
  return total;
}

export function lifetimeSuccessRate(c) {
  const all = (c.succeeded || 0) + (c.dead_lettered || 0);
  return all ? (100 * c.succeeded) / all : null;
}

function figure(caption, chart) {
  const fig = document.createElementNS(HTML, "figure");
  fig.className = "chart-box";
  const cap = document.createElementNS(HTML, "figcaption");
  cap.textContent = caption;
  const summary = document.createElementNS(HTML, "p");
  summary.className = "help";
  summary.textContent = chart.summary;
  fig.append(cap, chart.svg, summary);
  return fig;
}

// The two activity charts shown on the overview and on a queue page.
export function activityCharts(history) {
  const throughput = lineChart({
    title: "Throughput",
    points: history.throughput(),
    format: (v) => `${v < 10 ? v.toFixed(1) : Math.round(v)}/s`,
    emptyText: "Throughput: collecting samples (one every 2 s)…",
  });
  const success = lineChart({
    title: "Success rate",
    points: history.successRate(),
    format: (v) => `${Math.round(v)} %`,
    fixedMax: 100,
    emptyText: "Success rate: no task finished in this window",
  });
  return [figure("Tasks finished per second", throughput), figure("Success rate per interval", success)];
}
