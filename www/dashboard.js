// The dashboard: the opt-in funnel (GET /v1/stats), journeys, and the
// Notifications view (its section below). Reads them with the admin token and draws them as
// hand-made SVG — no chart library, so nothing to download and every mark is
// a focusable element with a spoken label (Tab moves through the numbers).
// All text goes in with textContent: prompt ids come from public events.

const SVG = "http://www.w3.org/2000/svg";
const DAY = 86_400_000;
// Okabe–Ito: distinguishable with the common colour-vision deficiencies.
const COLORS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00"];
const HOLDOUT_COLOR = "#888888";
// Every status GET /v1/stats reports (server/src/push.rs DeliveryStatus, and
// `scheduled`), in legend order: the Okabe–Ito hues, and greys for the rest.
const STATUS_COLORS = {
  delivered: "#009E73", retrying: "#E69F00", queued: "#56B4E9", scheduled: "#0072B2", held: "#CC79A7",
  failed: "#D55E00", pruned: "#888888", cancelled: "#555555", capped: "#F0E442", collapsed: "#BBBBBB",
  muted: "#332288", paused: "#882255", too_large: "#AA4499", withheld: "#44AA99",
  awaiting_winner: "#DDCC77",
};
// Fills with under 2:1 contrast on a light page (capped 1.3, collapsed 1.9,
// awaiting_winner 1.6)
// or a dark one (cancelled 2.3 on Firefox's, paused 1.8) get a mid-grey outline
// (`.outlined`, dashboard.css), so their bars and swatches still show.
const OUTLINED = new Set(["capped", "collapsed", "cancelled", "paused", "awaiting_winner"]);
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

// Chart text is 12 px (.chart in dashboard.css); labels are bold. Measured
// with a canvas so columns fit their text at any width.
const ruler = document.createElement("canvas").getContext("2d");
const FONT_FAMILY = getComputedStyle(document.documentElement).fontFamily;
function measure(content, bold = false) {
  ruler.font = `${bold ? 600 : 400} 12px ${FONT_FAMILY}`;
  return ruler.measureText(String(content)).width;
}
const widest = (texts, bold) => Math.max(0, ...texts.map((t) => measure(t, bold)));
/** `content` cut to `max` px with "…" (variant ids can be 200 characters); marks keep the full text. */
function fit(content, max, bold = true) {
  let s = String(content);
  if (measure(s, bold) <= max) return s;
  while (s && measure(`${s}…`, bold) > max) s = s.slice(0, -1);
  return `${s}…`;
}

/** A focusable group with a label read by screen readers and shown on hover. */
function mark(label, ...children) {
  const group = el("svg:g", { tabindex: 0, role: "img", "aria-label": label, class: "mark" }, el("svg:title", {}, label));
  group.append(...children);
  return group;
}

// Every chart is drawn at its card's width in CSS pixels (viewBox = size):
// a fixed 640-wide drawing scaled into a 320 px phone card shrank 12 px
// text to 6 px. `plot(draw)` is a slot that calls `draw(width)` once it is
// on the page, and again when its width changes (rotation, window resize).
const drawers = new WeakMap();
function redraw(slot) {
  const drawer = drawers.get(slot);
  const width = Math.floor(slot.clientWidth);
  if (!drawer || !width || width === drawer.width) return;
  drawer.width = width;
  slot.replaceChildren(drawer.draw(width));
}
const resized = new ResizeObserver((entries) => entries.forEach((entry) => redraw(entry.target)));
function plot(draw) {
  const slot = el("div", { class: "plot" });
  drawers.set(slot, { draw, width: 0 });
  resized.observe(slot);
  return slot;
}
const drawAll = () => document.querySelectorAll(".plot").forEach(redraw);

function chart(width, height, title) {
  return el("svg:svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "group", "aria-label": title, class: "chart" });
}

function colorOf(variants) {
  const colors = new Map();
  variants.filter((v) => !v.holdout).forEach((v, i) => colors.set(v.variant, COLORS[i % COLORS.length]));
  return (v) => (v.holdout ? HOLDOUT_COLOR : colors.get(v.variant));
}

function figure(title, draw, note) {
  const fig = el("figure", { class: "card" }, el("figcaption", {}, title), plot(draw));
  if (note) fig.append(el("p", { class: "note" }, note));
  return fig;
}

// One denominator: every step is a share of impressions, and each step is
// a subset of the one before. Clicks are not a step: a subscriber gets many
// pushes, so they are a rate of delivered pushes (the click-through card).
const STEPS = [
  ["prompt_shown", "shown"],
  ["prompt_accepted", "said yes"],
  ["native_granted", "allowed"],
  ["subscribed", "subscribed"],
];

function funnelChart(variants, color, width) {
  const arms = variants.filter((v) => !v.holdout);
  const barsH = 16 * arms.length;
  const rowH = barsH + 12;
  const svg = chart(width, STEPS.length * rowH + 10, "Funnel per variant");
  const maxShown = Math.max(1, ...arms.map((v) => v.counts.prompt_shown ?? 0));
  const value = (v, kind) => {
    const n = v.counts[kind] ?? 0;
    const shown = v.counts.prompt_shown ?? 0;
    return { n, share: shown ? pct(n / shown) : null };
  };
  const shortValue = ({ n, share }) => (share ? `${n} (${share})` : `${n}`);
  // Columns: step names, bars, then the widest value text, so nothing runs past the card.
  const left = widest(STEPS.map(([, label]) => label), true) + 8;
  const right = widest(arms.flatMap((v) => STEPS.map(([kind]) => shortValue(value(v, kind))))) + 6;
  const span = Math.max(20, width - left - right);
  STEPS.forEach(([kind, label], s) => {
    const y0 = s * rowH + 5;
    svg.append(text(0, y0 + barsH / 2, label, { class: "label", "dominant-baseline": "middle" }));
    arms.forEach((v, i) => {
      const step = value(v, kind);
      const w = Math.max(1, (step.n / maxShown) * span);
      const y = y0 + i * 16 + 2;
      const share = step.share ? ` (${step.share} of shown)` : "";
      svg.append(mark(`${v.variant}: ${step.n} ${label}${share}`,
        el("svg:rect", { x: left, y, width: w, height: 12, rx: 2, fill: color(v) }),
        text(left + w + 4, y + 6, shortValue(step), { class: "value", "dominant-baseline": "middle" })));
    });
  });
  return svg;
}

function intervalChart(rows, title, axisLabel, width) {
  const svg = chart(width, rows.length * 30 + 34, title);
  const max = axisEnd(Math.max(...rows.map((r) => r.rate.high ?? 0)));
  const left = Math.min(widest(rows.map((r) => r.name), true) + 12, width * 0.3);
  const right = measure(pct(1)) + 12;
  const x = (v) => left + (v / max) * (width - left - right);
  // Fewer ticks when narrow: six labels like "0.8%" collide under 300 px.
  const ticks = width - left - right >= 300 ? 5 : 2;
  for (let t = 0; t <= ticks; t++) {
    const v = (max * t) / ticks;
    svg.append(el("svg:line", { x1: x(v), x2: x(v), y1: 4, y2: rows.length * 30 + 8, class: "grid" }),
      text(x(v), rows.length * 30 + 24, tick(v), { class: "axis", "text-anchor": "middle" }));
  }
  rows.forEach((r, i) => {
    const y = i * 30 + 18;
    svg.append(text(0, y, fit(r.name, left - 12), { class: "label", "dominant-baseline": "middle" }));
    if (r.rate.rate == null) {
      svg.append(text(left, y, "no data yet", { class: "value", "dominant-baseline": "middle" }));
      return;
    }
    svg.append(mark(`${r.name}: ${axisLabel} ${pct(r.rate.rate)}, 95% interval ${pct(r.rate.low)} to ${pct(r.rate.high)} (${r.detail})`,
      el("svg:line", { x1: x(r.rate.low), x2: x(r.rate.high), y1: y, y2: y, stroke: r.color, "stroke-width": 3 }),
      el("svg:circle", { cx: x(r.rate.rate), cy: y, r: 6, fill: r.color }),
      text(x(r.rate.high) + 8, y, pct(r.rate.rate), { class: "value", "dominant-baseline": "middle" })));
  });
  return svg;
}

function seriesChart(daily, variants, color, from, to, width) {
  const svg = chart(width, 200, "Opt-in rate per day");
  const days = Math.max(1, Math.round((to - from) / DAY));
  const x = (ms) => 40 + ((ms - from) / (days * DAY)) * (width - 60);
  const points = new Map();
  for (const p of daily) if (p.shown > 0) (points.get(p.variant) ?? points.set(p.variant, []).get(p.variant)).push(p);
  const max = axisEnd(Math.max(...daily.filter((p) => p.shown > 0).map((p) => p.subscribed / p.shown)));
  const y = (rate) => 175 - (rate / max) * 160;
  for (let t = 0; t <= 2; t++) {
    const v = (max * t) / 2;
    svg.append(el("svg:line", { x1: 40, x2: width - 20, y1: y(v), y2: y(v), class: "grid" }), text(34, y(v), tick(v), { class: "axis", "text-anchor": "end", "dominant-baseline": "middle" }));
  }
  svg.append(text(40, 195, day(from), { class: "axis" }), text(width - 20, 195, day(to - 1), { class: "axis", "text-anchor": "end" }));
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
  const clicks = p.variants.filter((v) => !v.holdout).map((v) => ({
    name: v.variant, color: color(v), rate: v.click_through,
    detail: `${v.counts.notification_clicked ?? 0} of ${v.counts.notification_delivered ?? 0} delivered pushes`,
  }));
  const cards = el("div", { class: "cards" },
    figure("Funnel: from impression to subscription (share of shown)", (w) => funnelChart(p.variants, color, w)),
    figure(`Opt-in rate (subscribed / shown)${p.baseline ? `, baseline ${p.baseline}` : ""}`, (w) => intervalChart(optIn, "Opt-in rate per variant", "opt-in", w)),
    figure("Opt-in rate over time", (w) => seriesChart(p.daily, p.variants, color, report.from, report.to, w)),
    figure("Click-through (clicks / delivered pushes)", (w) => intervalChart(clicks, "Click-through per variant", "click-through", w)),
    figure("Conversion (devices that converted)", (w) => intervalChart(conversion, "Conversion per cohort", "conversion", w)),
    figure("Retention: still subscribed and active 7 days later", (w) => intervalChart(retention, "7-day retention per variant", "retention", w)));
  const compared = p.comparisons.length ? verdicts(p.comparisons) : el("p", { class: "note" }, "One variant and no holdout: nothing to compare. Add variants to the prompt to run an experiment.");
  section.append(cards, el("h3", {}, "Verdicts"), compared);
  return section;
}

function nativeChart(native, width) {
  const svg = chart(width, 70, "Native accept rate against the guard's floor");
  const span = width - 20;
  const x = (v) => 10 + v * span;
  const r = native.accept_rate;
  svg.append(el("svg:rect", { x: x(0), y: 20, width: span, height: 16, class: "track" }));
  if (r.rate != null) {
    svg.append(mark(`Native accept rate ${pct(r.rate)} (95% interval ${pct(r.low)} to ${pct(r.high)}): ${native.granted} allowed, ${native.denied} blocked`,
      el("svg:rect", { x: x(0), y: 20, width: r.rate * span, height: 16, fill: r.rate < native.floor ? "#D55E00" : "#009E73" }),
      el("svg:line", { x1: x(r.low), x2: x(r.high), y1: 28, y2: 28, stroke: "CanvasText", "stroke-width": 2 })));
  }
  const floor = `floor ${pct(native.floor)}`;
  // Centred under the line, but never past either edge (a floor near 0 or 100%).
  const half = measure(floor) / 2;
  const at = Math.min(Math.max(x(native.floor), half), width - half);
  svg.append(mark(`Floor ${pct(native.floor)}: below it Askwell pauses push prompts`,
    el("svg:line", { x1: x(native.floor), x2: x(native.floor), y1: 12, y2: 44, class: "floor" }),
    text(at, 60, floor, { class: "axis", "text-anchor": "middle" })));
  return svg;
}

function nativeCard(native) {
  const r = native.accept_rate;
  $("native").replaceChildren(el("figcaption", {}, `Browser prompt: ${pct(r.rate)} allow (${native.granted} allowed, ${native.denied} blocked, ${native.dismissed} closed)`),
    plot((w) => nativeChart(native, w)));
}

function deliveriesChart(days, width) {
  const svg = chart(width, 170, "Deliveries by status per day");
  const max = Math.max(1, ...days.map((d) => Object.values(d.statuses).reduce((a, b) => a + b, 0)));
  // Bar plus gap; 90 days on a phone leave 3 px each, so the gap shrinks too.
  const slot = Math.min(44, (width - 40) / days.length);
  const w = Math.max(1, slot - Math.min(4, slot / 4));
  // A date under every n-th bar only: 30 dates do not fit side by side on a phone.
  const every = Math.ceil((measure("00-00") + 8) / slot);
  days.forEach((d, i) => {
    let y = 145;
    const x = 20 + i * slot;
    for (const [status, n] of Object.entries(d.statuses)) {
      const h = (n / max) * 130;
      y -= h;
      svg.append(mark(`${day(d.day)}: ${n} ${status}`, el("svg:rect", { x, y, width: w, height: Math.max(h, 1), fill: STATUS_COLORS[status] ?? "#444", class: OUTLINED.has(status) ? "outlined" : "" })));
    }
    if (i % every === 0) svg.append(text(x + w / 2, 162, day(d.day), { class: "axis", "text-anchor": "middle" }));
  });
  return svg;
}

function deliveriesCard(days, synthetic) {
  const fig = $("deliveries");
  const caption = el("figcaption", {}, "Deliveries by status, per day");
  if (synthetic || !days.length) {
    fig.replaceChildren(caption, el("p", { class: "note" }, synthetic ? "The simulation sends no pushes: deliveries are shown for real data only." : "No notifications sent in this period."));
    return;
  }
  const keys = el("ul", { class: "legend" });
  for (const [status, c] of Object.entries(STATUS_COLORS)) keys.append(el("li", {}, el("span", { class: OUTLINED.has(status) ? "swatch outlined" : "swatch", style: `background:${c}` }), status));
  fig.replaceChildren(caption, plot((w) => deliveriesChart(days, w)), keys);
}

// How each category's and topic's pushes were received, in words: the
// fatigue guard's flag, and whether it pauses the category now. Marked by
// text, never by colour alone.
const TIRED = { dismissed: "tiring: mostly dismissed", unsubscribed: "tiring: unsubscribes follow" };
function fatigueCard(rows, paused, synthetic) {
  const fig = $("fatigue");
  const caption = el("figcaption", {}, "How pushes are received, per category and topic");
  if (synthetic || !rows.length) {
    fig.replaceChildren(caption, el("p", { class: "note" }, synthetic ? "The simulation sends no pushes: reception is shown for real data only." : "No pushes delivered in this period."));
    return;
  }
  const share = (n, of) => pct(of ? n / of : null);
  const verdict = (r) => {
    if (r.paused) return `paused: ${TIRED[r.flagged] ?? "tiring"}, so its pushes are not sent`;
    return TIRED[r.flagged] ?? "fine";
  };
  const head = ["Category or topic", "Delivered", "Clicked", "Dismissed", "Unsubscribed since", "Verdict"];
  const table = el("table", { class: "steps fatigue" },
    el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, ...rows.map((r) => el("tr", { class: r.paused ? "paused" : r.flagged ? "flagged" : "" },
      el("th", { scope: "row" }, `${r.name} (${r.kind})`),
      el("td", {}, String(r.delivered)),
      el("td", {}, share(r.clicked, r.delivered)),
      el("td", {}, share(r.dismissed, r.delivered)),
      el("td", {}, share(r.unsubscribed, r.delivered)),
      el("td", {}, verdict(r))))));
  const note = paused.length
    ? `Paused now by the delivery policy's fatigue guard: ${paused.join(", ")}. Each resumes by itself once its window's pushes no longer tire people.`
    : "No category is paused.";
  // A phone is narrower than six columns: the table scrolls inside its card
  // (a focusable, named region, so keyboards can scroll it too).
  const scroller = el("div", { class: "scroll", role: "region", tabindex: 0, "aria-label": "Reception per category and topic" }, table);
  fig.replaceChildren(caption, scroller, el("p", { class: "note" }, note));
}

const STATE_NAMES = { waiting: "waiting", completed: "completed", event: "left on an exit event", "exit-step": "left at an exit step", deleted: "retired" };

// One journey: entrants by state, sends per step, and conversion of those
// sent to against the holdout with its verdict (the prompts' machinery).
function journeySection(j) {
  const r = j.report;
  const section = el("section", { class: "prompt", "aria-labelledby": `journey-${j.id}` });
  section.append(el("h3", { id: `journey-${j.id}` }, `Journey “${j.id}” (version ${j.version})`));
  const states = el("ul", { class: "legend" });
  for (const [state, n] of Object.entries(r.states)) states.append(el("li", {}, `${STATE_NAMES[state] ?? state}: ${n}`));
  for (const [event, n] of Object.entries(r.exited_by)) states.append(el("li", {}, `ended by ${event}: ${n}`));
  const steps = el("table", { class: "steps" },
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Step"), el("th", { scope: "col" }, "Sent"), el("th", { scope: "col" }, "Withheld (holdout)"), el("th", { scope: "col" }, "Refused"))),
    el("tbody", {}, ...r.steps.map((s) => el("tr", {}, el("td", {}, `#${s.step}`), el("td", {}, String(s.sent)), el("td", {}, String(s.withheld)), el("td", {}, String(s.failed))))));
  const c = r.conversion;
  const rows = [
    { name: "sent to", color: COLORS[0], rate: c.sent_to.rate, detail: `${c.sent_to.converted} of ${c.sent_to.entered} entrants` },
    { name: "holdout", color: HOLDOUT_COLOR, rate: c.holdout.rate, detail: `${c.holdout.converted} of ${c.holdout.entered} entrants` },
  ];
  const delivered = Object.entries(r.deliveries).map(([status, n]) => `${status} ${n}`).join(", ") || "none yet";
  section.append(
    el("p", {}, `${r.entered} entered (${r.holdout} in the holdout). Deliveries: ${delivered}.`),
    states,
    el("div", { class: "cards" },
      figure("Conversion after entering: sent to vs holdout", (w) => intervalChart(rows, "Conversion per arm", "conversion", w)),
      el("figure", { class: "card" }, el("figcaption", {}, "Sends per step"), steps)),
    verdicts([{ metric: "conversion", variant: "sent to", baseline: "holdout", difference: c.difference, verdict: c.verdict }]));
  return section;
}

// `url`'s JSON fetched with the admin token, or `null` without a word: a
// panel that cannot load stays hidden (the funnel's message says why).
async function fetchQuietly(url) {
  const token = $("token").value.trim();
  if (!token) return null;
  try {
    const response = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    return response.ok ? await response.json() : null;
  } catch {
    return null;
  }
}
async function loadJourneys() {
  const answer = await fetchQuietly("/v1/journeys");
  if (!answer) return;
  const { journeys } = answer;
  $("journeys").hidden = journeys.length === 0;
  $("journey-list").replaceChildren(...journeys.map(journeySection));
  drawAll();
}

// `url` fetched with the admin token; `null` (and a message) when the server
// cannot be reached or says no.
async function fetchAdmin(url) {
  const token = $("token").value.trim();
  if (!token) return null;
  sessionStorage.setItem(TOKEN_KEY, token);
  $("message").textContent = "Loading…";
  let response;
  try {
    response = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  } catch {
    $("message").textContent = "The server cannot be reached.";
    return null;
  }
  if (response.ok) return response;
  const body = await response.json().catch(() => ({}));
  $("message").textContent = response.status === 401 ? "Wrong admin token." : `Error: ${body.error?.message ?? response.status}`;
  return null;
}

// `path` with the form's dataset and period, as `fetchAdmin`.
function fetchStats(path) {
  const to = Date.now() + 1;
  const from = to - Number($("days").value) * DAY;
  return fetchAdmin(`${path}?from=${from}&to=${to}&dataset=${$("dataset").value}`);
}

async function load(event) {
  event?.preventDefault();
  const response = await fetchStats("/v1/stats");
  if (response) render(await response.json());
  await loadJourneys();
  await loadNotifications();
}

// Saves what `response` holds as `name` (a CSV for a spreadsheet).
async function save(response, name) {
  if (!response) return;
  const url = URL.createObjectURL(await response.blob());
  const link = el("a", { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 0);
  $("message").textContent = `Saved ${name}.`;
}

// The same numbers, one row per prompt × variant; and one row per journey
// (all time, so neither the dataset nor the period applies).
const download = async () => save(await fetchStats("/v1/stats.csv"), `askwell-funnel-${$("dataset").value}.csv`);
const downloadJourneys = async () => save(await fetchAdmin("/v1/journeys.csv"), "askwell-journeys.csv");

// ---- Notifications: each send's funnel, its variants, and a segment builder.
// Reads GET /v1/notifications (the list), GET /v1/notifications/{id} (one
// send's counts and A/B report) and POST /v1/notify with dry_run (a
// segment's size). Titles are the sender's text: textContent only, as all.

// The funnel of one send, each step a subset of the one before.
const SEND_STEPS = [["recipients", "recipients"], ["delivered", "delivered"], ["shown", "shown"], ["clicked", "clicked"]];
// Deliveries that were never sent, and why, in words.
const NOT_SENT = {
  held: "held by the delivery policy (waiting)", capped: "dropped by the delivery policy", collapsed: "merged into a digest",
  muted: "muted by the person", paused: "paused by the fatigue guard", withheld: "withheld (holdout)",
  too_large: "too large for a push", awaiting_winner: "waiting for the rollout's decision", failed: "failed",
  pruned: "device gone", cancelled: "cancelled", queued: "queued", scheduled: "scheduled", retrying: "retrying",
};
const when = (ms) => new Date(ms).toISOString().slice(0, 16).replace("T", " ");

function sendFunnelChart(steps, width) {
  const svg = chart(width, steps.length * 26 + 6, "Funnel of this notification");
  const left = widest(steps.map((s) => s.label), true) + 8;
  const values = steps.map((s) => (s.share == null ? `${s.n}` : `${s.n} (${pct(s.share)})`));
  const right = widest(values) + 6;
  const span = Math.max(20, width - left - right);
  const max = Math.max(1, steps[0].n);
  steps.forEach((step, i) => {
    const y = i * 26 + 4;
    const w = Math.max(1, (step.n / max) * span);
    const share = step.share == null ? "" : ` (${pct(step.share)} of ${step.of})`;
    svg.append(text(0, y + 9, step.label, { class: "label", "dominant-baseline": "middle" }),
      mark(`${step.n} ${step.label}${share}`,
        el("svg:rect", { x: left, y, width: w, height: 18, rx: 2, fill: COLORS[0] }),
        text(left + w + 4, y + 9, values[i], { class: "value", "dominant-baseline": "middle" })));
  });
  return svg;
}

function funnelSteps(recipients, counts, experiment) {
  const steps = SEND_STEPS.map(([key, label]) => ({ label, n: key === "recipients" ? recipients : counts[key] }));
  const converted = experiment?.variants?.reduce((a, v) => a + (v.converted ?? 0), 0);
  if (experiment?.conversion) steps.push({ label: `users converted (${experiment.conversion.event})`, n: converted });
  return steps.map((s, i) => (i === 0 ? s : { ...s, share: steps[i - 1].n ? s.n / steps[i - 1].n : null, of: steps[i - 1].label }));
}

function notificationDetail(summary, answer) {
  const { counts, experiment } = answer;
  const section = el("section", { class: "prompt", "aria-labelledby": "notification-title" });
  section.append(el("h3", { id: "notification-title" }, `“${summary.title}”, sent ${when(summary.created_ms)}`));
  const notSent = Object.entries(NOT_SENT).filter(([k]) => counts[k] > 0).map(([k, words]) => el("li", {}, `${words}: ${counts[k]}`));
  const cards = el("div", { class: "cards" },
    figure("Funnel: recipients, delivered, shown, clicked (share of the step before)", (w) => sendFunnelChart(funnelSteps(summary.recipients, counts, experiment), w)),
    el("figure", { class: "card" }, el("figcaption", {}, "Not sent (yet), and why"),
      notSent.length ? el("ul", {}, ...notSent) : el("p", { class: "note" }, "Every recipient was sent it.")));
  section.append(cards);
  if (!experiment) {
    section.append(el("p", { class: "note" }, "Not an A/B test: send it with notification.variants to compare copy."));
    return section;
  }
  const arms = experiment.variants.map((v, i) => ({
    name: v.id, color: COLORS[i % COLORS.length], rate: v.click_through, detail: `${v.clicked} of ${v.delivered} delivered`,
  }));
  const tested = el("div", { class: "cards" },
    figure(`Click-through per variant, baseline ${experiment.baseline}`, (w) => intervalChart(arms, "Click-through per variant", "click-through", w)));
  if (experiment.conversion) {
    const conv = experiment.variants.map((v, i) => ({
      name: v.id, color: COLORS[i % COLORS.length], rate: v.conversion, detail: `${v.converted} of ${v.reachable} users reached`,
    }));
    conv.push({ name: "holdout", color: HOLDOUT_COLOR, rate: experiment.conversion.holdout.conversion,
      detail: `${experiment.conversion.holdout.converted} of ${experiment.conversion.holdout.reachable} users withheld` });
    tested.append(figure(`Conversion (${experiment.conversion.event})`, (w) => intervalChart(conv, "Conversion per variant", "conversion", w)));
  }
  const compared = experiment.comparisons.flatMap((c) => [
    { metric: "click_through", variant: c.variant, baseline: experiment.baseline, difference: c.difference, verdict: c.verdict },
    ...(c.conversion ? [{ metric: "conversion", variant: c.variant, baseline: experiment.baseline, ...c.conversion }] : []),
  ]);
  section.append(el("h4", {}, "Variants"), tested, el("h4", {}, "Verdicts"),
    compared.length ? verdicts(compared) : el("p", { class: "note" }, `One copy against its holdout (${experiment.holdout} withheld).`));
  const rollout = experiment.rollout;
  if (rollout) {
    const said = rollout.decision
      ? rollout.decision.text
      : `Testing on ${pct(rollout.test_share)} of the devices; decided at ${when(rollout.decide_at_ms)} UTC, then the rest gets the winner, or the baseline if none is clear.`;
    section.append(el("h4", {}, "Rollout"), el("p", {}, el("strong", {}, said)),
      el("p", { class: "note" }, `The rest: ${rollout.rest.deliveries} devices, ${rollout.rest.delivered} delivered, ${rollout.rest.clicked} clicked.`));
  }
  return section;
}

let notificationAsked = 0;
async function showNotification(summary) {
  // Two quick picks: the answer to the older one is dropped.
  const asked = ++notificationAsked;
  const response = await fetchAdmin(`/v1/notifications/${encodeURIComponent(summary.id)}`);
  if (!response || asked !== notificationAsked) return;
  for (const row of $("notification-list").tBodies[0].rows) {
    if (row.dataset.id === summary.id) row.setAttribute("aria-current", "true");
    else row.removeAttribute("aria-current");
  }
  $("notification-detail").replaceChildren(notificationDetail(summary, await response.json()));
  drawAll();
  $("message").textContent = `Showing “${summary.title}”.`;
}

function notificationRow(n) {
  const c = n.counts;
  const open = el("button", { type: "button" }, n.title || "(no title)");
  open.addEventListener("click", () => showNotification(n));
  const flags = [n.experiment ? "A/B test" : "", n.cancelled ? "cancelled" : ""].filter(Boolean).join(", ");
  return el("tr", { "data-id": n.id },
    el("th", { scope: "row" }, open, flags ? ` (${flags})` : ""),
    el("td", {}, when(n.created_ms)),
    el("td", {}, n.topic ?? "–"),
    el("td", {}, String(n.recipients)),
    el("td", {}, String(c.delivered)),
    el("td", {}, String(c.shown)),
    el("td", {}, String(c.clicked)),
    el("td", {}, pct(c.delivered ? c.clicked / c.delivered : null)));
}

async function loadNotifications() {
  const answer = await fetchQuietly("/v1/notifications?limit=50");
  if (!answer) return;
  const notificationRows = answer.notifications;
  $("notifications").hidden = false;
  $("notification-list").tBodies[0].replaceChildren(...notificationRows.map(notificationRow));
  if (!notificationRows.length) {
    $("notification-list").tBodies[0].append(el("tr", {}, el("td", { colspan: 8 }, "No notifications sent yet.")));
  }
  // No condition is everyone: the builder starts from the whole audience.
  if (!$("conditions").children.length) segmentChanged();
}
const downloadNotifications = async () => save(await fetchAdmin("/v1/notifications.csv?limit=200"), "askwell-notifications.csv");

// The segment builder: each row one condition, all of them together the
// segment; what each kind asks for, and the condition it makes.
const CONDITIONS = {
  trait_equals: { label: "trait equals", fields: ["trait", "value"], make: (f) => ({ trait: f.trait, equals: scalar(f.value) }) },
  trait_gte: { label: "trait at least", fields: ["trait", "number"], make: (f) => ({ trait: f.trait, gte: Number(f.number) }) },
  trait_lte: { label: "trait at most", fields: ["trait", "number"], make: (f) => ({ trait: f.trait, lte: Number(f.number) }) },
  topic: { label: "topic", fields: ["topic"], make: (f) => ({ topic: f.topic }) },
  active_within: { label: "active within (days)", fields: ["days"], make: (f) => ({ active_within: { days: Number(f.days) } }) },
  inactive_for: { label: "inactive for (days)", fields: ["days"], make: (f) => ({ inactive_for: { days: Number(f.days) } }) },
  event: { label: "event count within (days)", fields: ["event", "days", "at least"], make: (f) => ({ event: f.event, within: { days: Number(f.days) }, at_least: Number(f["at least"] || 1) }) },
  subscribed_for: { label: "subscribed for (days)", fields: ["days"], make: (f) => ({ subscribed_for: { days: Number(f.days) } }) },
  browser: { label: "browser", fields: ["browser"], make: (f) => ({ browser: f.browser }) },
  bucket: { label: "bucket (0–100)", fields: ["from", "to"], make: (f) => ({ bucket: [Number(f.from), Number(f.to)] }) },
};
// "true" and "12" are typed as JSON would be; anything else is text.
function scalar(value) {
  if (value === "true" || value === "false") return value === "true";
  return value !== "" && Number.isFinite(Number(value)) ? Number(value) : value;
}
let conditionCount = 0;
function conditionRow(kind = "trait_equals") {
  const n = ++conditionCount;
  const item = el("li", { "data-kind": kind });
  const select = el("select", { "aria-label": `Condition ${n}: kind` });
  for (const [key, c] of Object.entries(CONDITIONS)) {
    const option = el("option", { value: key }, c.label);
    if (key === kind) option.setAttribute("selected", "");
    select.append(option);
  }
  const fields = el("span", { class: "fields" });
  const drawFields = () => {
    item.dataset.kind = select.value;
    fields.replaceChildren(...CONDITIONS[select.value].fields.map((name) => {
      const input = name === "browser"
        ? el("select", { "data-field": name }, ...["chrome", "firefox", "safari", "edge"].map((b) => el("option", { value: b }, b)))
        : el("input", { "data-field": name, type: ["number", "days", "at least", "from", "to"].includes(name) ? "number" : "text" });
      return el("label", {}, `${name} (condition ${n})`, input);
    }));
  };
  select.addEventListener("change", () => { drawFields(); segmentChanged(); });
  const remove = el("button", { type: "button" }, `Remove condition ${n}`);
  remove.addEventListener("click", () => {
    item.remove();
    segmentChanged();
    $("add-condition").focus(); // Not left on the removed button.
  });
  item.append(select, fields, remove);
  item.addEventListener("input", segmentChanged);
  drawFields();
  return item;
}
function segmentCondition() {
  const all = [...$("conditions").children].map((item) => {
    const values = Object.fromEntries([...item.querySelectorAll("[data-field]")].map((input) => [input.dataset.field, input.value.trim()]));
    return CONDITIONS[item.dataset.kind].make(values);
  });
  return all.length === 1 ? all[0] : { all };
}
let segmentTimer;
let segmentAsked = 0;
function segmentChanged() {
  const condition = segmentCondition();
  $("segment-json").value = JSON.stringify(condition);
  clearTimeout(segmentTimer);
  segmentTimer = setTimeout(() => countSegment(condition), 250);
}
// The live count: a dry run of a send to the segment (writes nothing). An
// answer to an older condition than the newest is dropped.
async function countSegment(condition) {
  const token = $("token").value.trim();
  if (!token) return;
  const asked = ++segmentAsked;
  let said;
  try {
    const response = await fetch("/v1/notify", {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ to: { where: condition }, notification: { title: "segment size" }, dry_run: true }),
    });
    const body = await response.json().catch(() => ({}));
    said = response.ok
      ? `${body.recipients} device${body.recipients === 1 ? "" : "s"} match.`
      : `Not a valid segment yet: ${body.error?.message ?? response.status}`;
  } catch {
    said = "The server cannot be reached.";
  }
  if (asked === segmentAsked) $("segment-count").textContent = said;
}
function addCondition() {
  $("conditions").append(conditionRow());
  segmentChanged();
}

function render(report) {
  const synthetic = report.dataset === "synthetic";
  $("synthetic-banner").hidden = !synthetic;
  $("overview").hidden = false;
  nativeCard(report.native);
  deliveriesCard(report.deliveries, synthetic);
  fatigueCard(report.fatigue, report.paused_categories, synthetic);
  $("prompts").replaceChildren(...report.prompts.map((p) => promptSection(p, report)));
  drawAll();
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
$("journeys-download").addEventListener("click", downloadJourneys);
$("notifications-download").addEventListener("click", downloadNotifications);
$("add-condition").addEventListener("click", addCondition);
if ($("token").value) load();
