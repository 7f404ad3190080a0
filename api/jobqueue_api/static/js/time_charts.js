// Inline-SVG charts over wall-clock buckets (the Analytics page) and a replicas sparkline (the Pools
// page). Same rules as charts.js: no library, no markup built from strings; every label is set with
// textContent, so a queue or task name can never become markup.

const SVG = "http://www.w3.org/2000/svg";
const HTML = "http://www.w3.org/1999/xhtml";
const PAD = { top: 8, right: 8, bottom: 18, left: 44 };

function size() {
  return window.innerWidth < 640 ? { WIDTH: 300, HEIGHT: 140 } : { WIDTH: 480, HEIGHT: 160 };
}

function el(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

function text(attrs, value) {
  const node = el("text", attrs);
  node.textContent = value;
  return node;
}

// A short label of a bucket's start: the hour for hourly buckets, the date for daily ones.
export function bucketLabel(unixSeconds, daily) {
  const d = new Date(unixSeconds * 1000);
  return daily
    ? d.toLocaleDateString(undefined, { month: "short", day: "numeric" })
    : d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

// buckets: [unix seconds], oldest first. series: [{label, values: [number|null] per bucket, cls}].
// kind "bars" draws the first series as bars (counts per bucket); "lines" draws every series as a line.
export function bucketChart({ title, buckets, series, format, kind = "lines", fixedMax, daily, emptyText }) {
  const { WIDTH, HEIGHT } = size();
  const known = series.flatMap((s) => s.values).filter((v) => v !== null && Number.isFinite(v));
  const latest = series
    .map((s) => {
      const last = [...s.values].reverse().find((v) => v !== null && Number.isFinite(v));
      return last === undefined ? null : `${s.label} ${format(last)}`;
    })
    .filter(Boolean);
  const summary = known.length ? `${title}, latest bucket: ${latest.join(", ")}` : emptyText;
  const svg = el("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", class: "chart" });
  svg.setAttribute("aria-label", summary);
  const titleEl = el("title");
  titleEl.textContent = summary;
  svg.append(titleEl);

  const max = fixedMax ?? Math.max(1, ...known.map((v) => v * 1.15));
  const innerW = WIDTH - PAD.left - PAD.right;
  const innerH = HEIGHT - PAD.top - PAD.bottom;
  const y = (v) => PAD.top + innerH - (Math.min(v, max) / max) * innerH;
  for (const frac of [0, 0.5, 1]) {
    const gy = y(max * frac);
    svg.append(el("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: gy, y2: gy, class: "grid" }));
    svg.append(text({ x: PAD.left - 4, y: gy + 3, class: "axis", "text-anchor": "end" }, format(max * frac)));
  }
  const n = buckets.length;
  if (n) {
    const step = innerW / n;
    const x = (i) => PAD.left + step * (i + 0.5);
    if (kind === "bars") {
      const width = Math.max(1, step * 0.7);
      series[0].values.forEach((v, i) => {
        if (v === null || !Number.isFinite(v) || v <= 0) return;
        const top = y(v);
        svg.append(
          el("rect", { x: (x(i) - width / 2).toFixed(1), y: top.toFixed(1), width: width.toFixed(1), height: (PAD.top + innerH - top).toFixed(1), class: "bar" }),
        );
      });
    } else {
      for (const s of series) {
        let d = "";
        let pen = false;
        s.values.forEach((v, i) => {
          if (v === null || !Number.isFinite(v)) {
            pen = false;
            return;
          }
          d += `${pen ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
          pen = true;
        });
        if (d) svg.append(el("path", { d, class: `line ${s.cls || ""}` }));
        // A lone point has no segment to draw: mark every point so one bucket is still visible.
        s.values.forEach((v, i) => {
          if (v !== null && Number.isFinite(v)) {
            svg.append(el("circle", { cx: x(i).toFixed(1), cy: y(v).toFixed(1), r: 2.5, class: `dot ${s.cls || ""}` }));
          }
        });
      }
    }
    svg.append(text({ x: PAD.left, y: HEIGHT - 4, class: "axis" }, bucketLabel(buckets[0], daily)));
    if (n > 1) {
      svg.append(
        text({ x: WIDTH - PAD.right, y: HEIGHT - 4, class: "axis", "text-anchor": "end" }, bucketLabel(buckets[n - 1], daily)),
      );
    }
  }
  return { svg, summary };
}

// The chart in a captioned figure, with a legend when it has several series and its summary as text.
export function bucketFigure(caption, chart, series = []) {
  const fig = document.createElementNS(HTML, "figure");
  fig.className = "chart-box";
  const cap = document.createElementNS(HTML, "figcaption");
  cap.textContent = caption;
  fig.append(cap, chart.svg);
  if (series.length > 1) {
    const legend = document.createElementNS(HTML, "ul");
    legend.className = "legend";
    for (const s of series) {
      const item = document.createElementNS(HTML, "li");
      const swatch = document.createElementNS(HTML, "span");
      swatch.className = `swatch ${s.cls || ""}`;
      swatch.setAttribute("aria-hidden", "true");
      item.append(swatch, document.createTextNode(s.label));
      legend.append(item);
    }
    fig.append(legend);
  }
  const summary = document.createElementNS(HTML, "p");
  summary.className = "help";
  summary.textContent = chart.summary;
  fig.append(summary);
  return fig;
}

// A word-sized line of values (oldest first), e.g. a pool's replicas over the last minutes. The scale
// starts at 0 so one replica more or less does not look like a cliff.
export function sparkline(values, label) {
  const W = 96;
  const H = 24;
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", class: "sparkline" });
  svg.setAttribute("aria-label", label);
  const titleEl = el("title");
  titleEl.textContent = label;
  svg.append(titleEl);
  const known = values.filter((v) => v !== null && Number.isFinite(v));
  if (!known.length) return svg;
  const max = Math.max(1, ...known);
  const x = (i) => (values.length > 1 ? 2 + (i / (values.length - 1)) * (W - 4) : W / 2);
  const y = (v) => H - 2 - (v / max) * (H - 4);
  let d = "";
  values.forEach((v, i) => {
    if (v === null || !Number.isFinite(v)) return;
    d += `${d ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
  });
  svg.append(el("path", { d, class: "spark-line" }));
  const lastIndex = values.length - 1 - [...values].reverse().findIndex((v) => v !== null && Number.isFinite(v));
  svg.append(el("circle", { cx: x(lastIndex).toFixed(1), cy: y(values[lastIndex]).toFixed(1), r: 2, class: "spark-dot" }));
  return svg;
}
