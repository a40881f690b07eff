// The funnel dashboard: reads GET /v1/stats (admin token) and draws it as
// hand-made SVG — no chart library, so nothing to download and every mark is
// a focusable element with a spoken label (Tab moves through the numbers).
// All text goes in with textContent: prompt ids come from public events.

const SVG = "http://www.w3.org/2000/svg";
const DAY = 86_400_000;
// Okabe–Ito: distinguishable with the common colour-vision deficiencies.
const COLORS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00"];
const HOLDOUT_COLOR = "#888888";
const STATUS_COLORS = { delivered: "#009E73", retrying: "#E69F00", queued: "#56B4E9", failed: "#D55E00", pruned: "#888888" };
const TOKEN_KEY = "askwell:dashboard:token";

const $ = (id) => document.getElementById(id);
const pct = (x) => (x == null ? "–" : `${(x * 100).toFixed(1)}%`);
const day = (ms) => new Date(ms).toISOString().slice(5, 10);
// Axis labels: "20%", "0.4%" (no ".0" on round ticks).
const tick = (x) => `${Number((x * 100).toFixed(1))}%`;
// The smallest round axis end at or above `value`, so ticks fall on round numbers.
const AXIS_ENDS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1];
const axisEnd = (value) => AXIS_ENDS.find((end) => end >= value) ?? 1;

function el(tag, attrs = {}, ...children) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  for (const child of children) node.append(child);
  return node;
}
const text = (x, y, content, attrs = {}) => el("svg:text", { x, y, ...attrs }, String(content));

/** A focusable group with a label read by screen readers and shown on hover. */
function mark(label, ...children) {
  const group = el("svg:g", { tabindex: 0, role: "img", "aria-label": label, class: "mark" }, el("svg:title", {}, label));
  group.append(...children);
  return group;
}

function chart(width, height, title) {
  return el("svg:svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "group", "aria-label": title, class: "chart" });
}

function colorOf(variants) {
  const colors = new Map();
  variants.filter((v) => !v.holdout).forEach((v, i) => colors.set(v.variant, COLORS[i % COLORS.length]));
  return (v) => (v.holdout ? HOLDOUT_COLOR : colors.get(v.variant));
}

function figure(title, svg, note) {
  const fig = el("figure", { class: "card" }, el("figcaption", {}, title), svg);
  if (note) fig.append(el("p", { class: "note" }, note));
  return fig;
}

const STEPS = [
  ["prompt_shown", "shown"],
  ["prompt_accepted", "said yes"],
  ["native_granted", "allowed"],
  ["subscribed", "subscribed"],
  ["notification_clicked", "push clicks"],
];

function funnelChart(variants, color) {
  const arms = variants.filter((v) => !v.holdout);
  const rowH = 14 * arms.length + 12;
  const svg = chart(640, STEPS.length * rowH + 10, "Funnel per variant");
  const maxShown = Math.max(1, ...arms.map((v) => v.counts.prompt_shown ?? 0));
  STEPS.forEach(([kind, label], s) => {
    const y0 = s * rowH + 5;
    svg.append(text(0, y0 + rowH / 2, label, { class: "label", "dominant-baseline": "middle" }));
    arms.forEach((v, i) => {
      const n = v.counts[kind] ?? 0;
      const shown = v.counts.prompt_shown ?? 0;
      const w = Math.max(1, (n / maxShown) * 420);
      const y = y0 + i * 14;
      const share = shown ? ` (${pct(n / shown)} of shown)` : "";
      svg.append(mark(`${v.variant}: ${n} ${label}${share}`,
        el("svg:rect", { x: 120, y, width: w, height: 11, rx: 2, fill: color(v) }),
        text(126 + w, y + 9, `${n}${share}`, { class: "value" })));
    });
  });
  return svg;
}

function intervalChart(rows, title, axisLabel) {
  const svg = chart(640, rows.length * 30 + 34, title);
  const max = axisEnd(Math.max(...rows.map((r) => r.rate.high ?? 0)));
  const x = (v) => 120 + (v / max) * 440;
  for (let t = 0; t <= 5; t++) {
    const v = (max * t) / 5;
    svg.append(el("svg:line", { x1: x(v), x2: x(v), y1: 4, y2: rows.length * 30 + 8, class: "grid" }),
      text(x(v), rows.length * 30 + 24, tick(v), { class: "axis", "text-anchor": "middle" }));
  }
  rows.forEach((r, i) => {
    const y = i * 30 + 18;
    svg.append(text(0, y, r.name, { class: "label", "dominant-baseline": "middle" }));
    if (r.rate.rate == null) {
      svg.append(text(120, y, "no data yet", { class: "value", "dominant-baseline": "middle" }));
      return;
    }
    svg.append(mark(`${r.name}: ${axisLabel} ${pct(r.rate.rate)}, 95% interval ${pct(r.rate.low)} to ${pct(r.rate.high)} (${r.detail})`,
      el("svg:line", { x1: x(r.rate.low), x2: x(r.rate.high), y1: y, y2: y, stroke: r.color, "stroke-width": 3 }),
      el("svg:circle", { cx: x(r.rate.rate), cy: y, r: 6, fill: r.color }),
      text(x(r.rate.high) + 8, y, pct(r.rate.rate), { class: "value", "dominant-baseline": "middle" })));
  });
  return svg;
}

function seriesChart(daily, variants, color, from, to) {
  const svg = chart(640, 200, "Opt-in rate per day");
  const days = Math.max(1, Math.round((to - from) / DAY));
  const x = (ms) => 40 + ((ms - from) / (days * DAY)) * 580;
  const points = new Map();
  for (const p of daily) if (p.shown > 0) (points.get(p.variant) ?? points.set(p.variant, []).get(p.variant)).push(p);
  const max = axisEnd(Math.max(...daily.filter((p) => p.shown > 0).map((p) => p.subscribed / p.shown)));
  const y = (rate) => 175 - (rate / max) * 160;
  for (let t = 0; t <= 2; t++) {
    const v = (max * t) / 2;
    svg.append(el("svg:line", { x1: 40, x2: 620, y1: y(v), y2: y(v), class: "grid" }), text(34, y(v), tick(v), { class: "axis", "text-anchor": "end", "dominant-baseline": "middle" }));
  }
  svg.append(text(40, 195, day(from), { class: "axis" }), text(620, 195, day(to - 1), { class: "axis", "text-anchor": "end" }));
  for (const v of variants.filter((v) => !v.holdout)) {
    const series = points.get(v.variant) ?? [];
    if (!series.length) continue;
    svg.append(el("svg:polyline", { points: series.map((p) => `${x(p.day + DAY / 2)},${y(p.subscribed / p.shown)}`).join(" "), fill: "none", stroke: color(v), "stroke-width": 2 }));
    for (const p of series) {
      svg.append(mark(`${v.variant} on ${day(p.day)}: ${p.subscribed} of ${p.shown} subscribed (${pct(p.subscribed / p.shown)})`,
        el("svg:circle", { cx: x(p.day + DAY / 2), cy: y(p.subscribed / p.shown), r: 3.5, fill: color(v) })));
    }
  }
  return svg;
}

function legend(variants, color) {
  const list = el("ul", { class: "legend" });
  for (const v of variants) {
    list.append(el("li", {}, el("span", { class: "swatch", style: `background:${color(v)}` }), v.holdout ? "holdout (never asked)" : `variant ${v.variant}`));
  }
  return list;
}

const METRICS = { opt_in: "Opt-in", click_through: "Click-through", conversion: "Conversion" };

function verdicts(comparisons) {
  const list = el("ul", { class: "verdicts" });
  for (const c of comparisons) {
    const d = c.difference;
    const range = d ? ` — difference ${pct(d.difference)} (95% CI ${pct(d.low)} to ${pct(d.high)})` : "";
    const about = `${METRICS[c.metric] ?? c.metric}, ${c.variant} vs ${c.baseline}: `;
    list.append(el("li", { class: c.verdict.outcome }, about, el("strong", {}, c.verdict.text), range));
  }
  return list;
}

function promptSection(p, report) {
  const color = colorOf(p.variants);
  const section = el("section", { class: "prompt", "aria-labelledby": `prompt-${p.prompt}` });
  section.append(el("h2", { id: `prompt-${p.prompt}` }, `Prompt “${p.prompt}”`), legend(p.variants, color));
  const optIn = p.variants.filter((v) => !v.holdout).map((v) => ({
    name: v.variant, color: color(v), rate: v.opt_in, detail: `${v.counts.subscribed ?? 0} of ${v.counts.prompt_shown ?? 0}`,
  }));
  const conversion = p.variants.map((v) => ({
    name: v.holdout ? "holdout" : v.variant, color: color(v), rate: v.conversion, detail: `${v.converted_devices} of ${v.devices} devices`,
  }));
  const retention = p.variants.filter((v) => !v.holdout).map((v) => ({
    name: v.variant, color: color(v), rate: v.retention_7d.rate, detail: `${v.retention_7d.retained} of ${v.retention_7d.eligible} subscribers`,
  }));
  const cards = el("div", { class: "cards" },
    figure("Funnel: from impression to click", funnelChart(p.variants, color)),
    figure(`Opt-in rate (subscribed / shown)${p.baseline ? `, baseline ${p.baseline}` : ""}`, intervalChart(optIn, "Opt-in rate per variant", "opt-in")),
    figure("Opt-in rate over time", seriesChart(p.daily, p.variants, color, report.from, report.to)),
    figure("Conversion (devices that converted)", intervalChart(conversion, "Conversion per cohort", "conversion")),
    figure("Retention: still subscribed and active 7 days later", intervalChart(retention, "7-day retention per variant", "retention")));
  const compared = p.comparisons.length ? verdicts(p.comparisons) : el("p", { class: "note" }, "One variant and no holdout: nothing to compare. Add variants to the prompt to run an experiment.");
  section.append(cards, el("h3", {}, "Verdicts"), compared);
  return section;
}

function nativeCard(native) {
  const svg = chart(640, 70, "Native accept rate against the guard's floor");
  const x = (v) => 10 + v * 600;
  const r = native.accept_rate;
  svg.append(el("svg:rect", { x: x(0), y: 20, width: 600, height: 16, class: "track" }));
  if (r.rate != null) {
    svg.append(mark(`Native accept rate ${pct(r.rate)} (95% interval ${pct(r.low)} to ${pct(r.high)}): ${native.granted} allowed, ${native.denied} blocked`,
      el("svg:rect", { x: x(0), y: 20, width: r.rate * 600, height: 16, fill: r.rate < native.floor ? "#D55E00" : "#009E73" }),
      el("svg:line", { x1: x(r.low), x2: x(r.high), y1: 28, y2: 28, stroke: "CanvasText", "stroke-width": 2 })));
  }
  svg.append(mark(`Floor ${pct(native.floor)}: below it Askwell pauses push prompts`,
    el("svg:line", { x1: x(native.floor), x2: x(native.floor), y1: 12, y2: 44, class: "floor" }),
    text(x(native.floor), 60, `floor ${pct(native.floor)}`, { class: "axis", "text-anchor": "middle" })));
  const fig = $("native");
  fig.replaceChildren(el("figcaption", {}, `Browser prompt: ${pct(r.rate)} allow (${native.granted} allowed, ${native.denied} blocked, ${native.dismissed} closed)`), svg);
}

function deliveriesCard(days, synthetic) {
  const fig = $("deliveries");
  const caption = el("figcaption", {}, "Deliveries by status, per day");
  if (synthetic || !days.length) {
    fig.replaceChildren(caption, el("p", { class: "note" }, synthetic ? "The simulation sends no pushes: deliveries are shown for real data only." : "No notifications sent in this period."));
    return;
  }
  const svg = chart(640, 170, "Deliveries by status per day");
  const max = Math.max(1, ...days.map((d) => Object.values(d.statuses).reduce((a, b) => a + b, 0)));
  const w = Math.min(40, 600 / days.length - 4);
  days.forEach((d, i) => {
    let y = 145;
    const x = 20 + i * (w + 4);
    for (const [status, n] of Object.entries(d.statuses)) {
      const h = (n / max) * 130;
      y -= h;
      svg.append(mark(`${day(d.day)}: ${n} ${status}`, el("svg:rect", { x, y, width: w, height: Math.max(h, 1), fill: STATUS_COLORS[status] ?? "#444" })));
    }
    svg.append(text(x + w / 2, 162, day(d.day), { class: "axis", "text-anchor": "middle" }));
  });
  const keys = el("ul", { class: "legend" });
  for (const [status, c] of Object.entries(STATUS_COLORS)) keys.append(el("li", {}, el("span", { class: "swatch", style: `background:${c}` }), status));
  fig.replaceChildren(caption, svg, keys);
}

// `path` with the form's dataset and period, fetched with the admin token;
// `null` (and a message) when the server cannot be reached or says no.
async function fetchStats(path) {
  const token = $("token").value.trim();
  if (!token) return null;
  sessionStorage.setItem(TOKEN_KEY, token);
  $("message").textContent = "Loading…";
  const to = Date.now() + 1;
  const from = to - Number($("days").value) * DAY;
  let response;
  try {
    response = await fetch(`${path}?from=${from}&to=${to}&dataset=${$("dataset").value}`, { headers: { authorization: `Bearer ${token}` } });
  } catch {
    $("message").textContent = "The server cannot be reached.";
    return null;
  }
  if (response.ok) return response;
  const body = await response.json().catch(() => ({}));
  $("message").textContent = response.status === 401 ? "Wrong admin token." : `Error: ${body.error?.message ?? response.status}`;
  return null;
}

async function load(event) {
  event?.preventDefault();
  const response = await fetchStats("/v1/stats");
  if (response) render(await response.json());
}

// Saves the same numbers, one row per prompt × variant, for a spreadsheet.
async function download() {
  const response = await fetchStats("/v1/stats.csv");
  if (!response) return;
  const url = URL.createObjectURL(await response.blob());
  const link = el("a", { href: url, download: `askwell-funnel-${$("dataset").value}.csv` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 0);
  $("message").textContent = `Saved ${link.download}.`;
}

function render(report) {
  const synthetic = report.dataset === "synthetic";
  $("synthetic-banner").hidden = !synthetic;
  $("overview").hidden = false;
  nativeCard(report.native);
  deliveriesCard(report.deliveries, synthetic);
  $("prompts").replaceChildren(...report.prompts.map((p) => promptSection(p, report)));
  $("message").textContent = report.prompts.length
    ? `${report.prompts.length} prompt${report.prompts.length === 1 ? "" : "s"}, ${day(report.from)} to ${day(report.to - 1)}.`
    : synthetic ? "No synthetic data yet: run `cargo xtask simulate` while the demo runs." : "No prompts shown in this period yet: try the demo apps, or look at the synthetic data.";
  document.documentElement.dataset.loaded = report.dataset;
}

const params = new URLSearchParams(location.search);
if (params.get("dataset") === "synthetic") $("dataset").value = "synthetic";
$("token").value = sessionStorage.getItem(TOKEN_KEY) ?? "";
$("query").addEventListener("submit", load);
$("dataset").addEventListener("change", () => load());
$("days").addEventListener("change", () => load());
$("download").addEventListener("click", download);
if ($("token").value) load();
