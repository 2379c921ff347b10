// The ops dashboard: reads /ui/state once, then follows /ui/events (server-sent events: the
// whole state first, then what changed, every second) and redraws. The session cookie
// authenticates both; the page never holds a key.
//
// When the live link drops the page says so in a banner, greys what it can no longer vouch
// for and shows the time of its data; ages ("last seen") keep counting on this page's clock,
// from the coordinator's timestamps, so a dead link never looks like a fresh one.
"use strict";

/** No event for this long (the server sends one a second) and the link counts as down. */
const LINK_SILENT_MS = 5000;
/** How often the ages on the page and the link's state are brought up to date. */
const TICK_MS = 1000;

/** The fleet's steps, in the order returns and units pass them (words in `pipeline.*`). */
const PIPELINE_STEPS = ["expected", "receiving", "in_transit", "received", "quarantine", "graded"];
/** A site's backlog, step by step (words in `step.*`). */
const BACKLOG_STEPS = ["expected", "receiving", "received", "quarantine", "graded", "disposed", "placed", "inbound"];
/** Throughput is drawn as two charts, so that no legend mixes returns and units. */
const THROUGHPUT_RETURNS = ["registered"];
const THROUGHPUT_UNITS = ["unit_received", "unit_graded", "disposition_set", "unit_departed"];

/** The words of `key`, or `fallback` (a code the texts do not know yet). */
function wordsOr(key, fallback) {
  const words = t(key);
  return words === key ? fallback : words;
}

/** A unit's state (`placed:restock`, `graded:B`) in words. */
function stateWords(state) {
  const [step, detail] = String(state || "").split(":");
  const words = wordsOr("unit_state." + step, step);
  if (!detail) return words;
  return words + " (" + (step === "graded" ? detail : wordsOr("disposition." + detail, detail)) + ")";
}

/** The state as last received, the coordinator's clock against ours, and the link. */
let state = null;
let clockOffsetMs = 0;
let lastEventAt = 0;
let linkUp = false;

/** The coordinator's time now, by this page's clock. */
function serverNow() {
  return Date.now() + clockOffsetMs;
}

/** A whole state arrived (from /ui/state, or the stream's first event). */
function received(s) {
  state = s;
  setTimeZone(s.time_zone);
  clockOffsetMs = s.now_ms - Date.now();
  lastEventAt = Date.now();
  setLink(true);
  render(s);
}

/** Applies the stream's changes (`[path, value]` sets, `[path]` deletes; see http/delta.rs). */
function applyDelta(doc, changes) {
  for (const c of changes) {
    const path = c[0];
    if (!path.length) { doc = c[1]; continue; }
    let at = doc;
    for (const step of path.slice(0, -1)) at = at[step];
    const last = path[path.length - 1];
    if (c.length > 1) at[last] = c[1];
    else delete at[last];
  }
  return doc;
}

function render(s) {
  renderHeader(s);
  renderAlerts(s);
  renderMap(s);
  renderSites(s);
  renderStores(s);
  renderPipeline(s);
  renderAnomalies(s);
  renderInsight(s);
}

function renderHeader(s) {
  const online = document.getElementById("online");
  online.textContent = t("dashboard.online", { n: s.n_online, total: s.sites.length });
  online.dataset.online = String(s.n_online);
  online.className = "pill " + (s.n_online === s.sites.length ? "ok" : "bad");
  const ac = document.getElementById("alert-count");
  const shouting = s.alerts.filter((a) => !a.silence).length;
  ac.textContent = shouting === 1 ? t("dashboard.alert_one") : t("dashboard.alert_n", { n: shouting });
  ac.dataset.shouting = String(shouting);
  ac.className = "pill " + (shouting ? "bad" : "ok");
}

/** The session's CSRF token for the alert actions (read once; the state stream is shared). */
let csrf = "";
api("/ui/csrf").then((c) => { csrf = c.csrf; }, () => {});
/** The alerts as last drawn: redrawn only when they change, so a control in use is kept. */
let drawnAlerts = "";

/** Posts an alert action; a refusal is shown under the alerts in the coordinator's words. */
async function silenceAlert(path, body) {
  const p = document.getElementById("alert-error");
  p.hidden = true;
  const res = await fetch(path, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify(body),
  });
  if (!res.ok) {
    p.textContent = t("dashboard.not_done", { why: await errorText(res) });
    p.hidden = false;
  }
}

/** What silences an alert, in words: who and when. */
function silenceWords(sl) {
  return sl.kind === "muted"
    ? t("dashboard.muted_until", { until: fmtDateTime(sl.until_ms), key: sl.by_key_id })
    : t("dashboard.acknowledged_by", { key: sl.by_key_id, at: fmtDateTime(sl.at_ms) });
}

function alertItem(a) {
  const item = el("li", { class: "kind-" + a.kind + (a.silence ? " silenced" : ""), "data-kind": a.kind,
    "data-site": a.site, "data-alert": a.key, "data-silenced": a.silence ? a.silence.kind : null },
    el("strong", { text: a.site }), " — ", el("strong", { text: wordsOr("alert." + a.kind, a.kind) }), ": ",
    alertText(a));
  if (a.silence) {
    item.append(el("span", { class: "silence", text: " (" + silenceWords(a.silence) + ")" }));
    return item;
  }
  const what = a.site + " — " + wordsOr("alert." + a.kind, a.kind);
  const minutes = el("select", { class: "mute-minutes", "aria-label": t("dashboard.mute_for", { alert: what }) },
    el("option", { value: "60", text: t("dashboard.mute_1h") }), el("option", { value: "240", text: t("dashboard.mute_4h") }),
    el("option", { value: "1440", text: t("dashboard.mute_1d") }));
  item.append(el("span", { class: "alert-actions" },
    el("button", { type: "button", class: "ack", "aria-label": t("dashboard.ack_label", { alert: what }),
      onclick: () => silenceAlert("/ui/alerts/acknowledge", { alert: a.key }) }, t("dashboard.ack")),
    minutes,
    el("button", { type: "button", class: "mute", "aria-label": t("dashboard.mute_label", { alert: what }),
      onclick: () => silenceAlert("/ui/alerts/mute", { alert: a.key, minutes: Number(minutes.value) }) }, t("dashboard.mute"))));
  return item;
}

function renderAlerts(s) {
  const box = document.getElementById("alerts");
  box.classList.toggle("quiet", s.alerts.every((a) => a.silence));
  const drawn = JSON.stringify([s.alerts, s.time_zone]);
  if (drawn === drawnAlerts) return;
  drawnAlerts = drawn;
  const th = s.thresholds;
  if (!s.alerts.length) {
    fill("alert-list", el("li", { text: t("dashboard.no_alerts", { offline: th.offline_minutes, ops: fmtInt(th.lag_ops),
      seconds: fmtInt(th.lag_seconds), quarantine: fmtInt(th.quarantine_max), device: th.device_down_minutes }) }));
    return;
  }
  fill("alert-list", s.alerts.map(alertItem));
}

function renderMap(s) {
  let root = document.querySelector("#map-svg svg");
  if (!root) {
    root = svg("svg", { viewBox: `0 0 ${JAPAN.width} ${JAPAN.height}`, role: "img", "aria-label": t("dashboard.map_label") });
    root.append(japanBase(), svg("g", { id: "map-stores" }), svg("g", { id: "map-sites" }));
    fill("map-svg", root);
  }
  const stores = root.querySelector("#map-stores");
  stores.replaceChildren(...s.stores.map((st) => {
    const [x, y] = project(st.latitude, st.longitude);
    const cls = "store" + (st.waiting >= 5 ? " busy" : st.waiting > 0 ? " waiting" : "")
      + (st.condition_mismatches > 0 ? " flagged" : "");
    const r = svg("rect", { class: cls, x: x - 3.5, y: y - 3.5, width: 7, height: 7, "data-store": st.id });
    r.append(svg("title", { text: t("dashboard.store_title", { name: st.name, kind: wordsOr("store_kind." + st.kind, st.kind),
      waiting: st.waiting, totes: st.totes })
      + (st.condition_mismatches ? t("dashboard.store_contradicted", { n: st.condition_mismatches }) : "") }));
    return r;
  }));
  const sites = root.querySelector("#map-sites");
  sites.replaceChildren(...s.sites.map((site) => {
    const [x, y] = project(site.latitude, site.longitude);
    const g = svg("g", { class: "site state-" + site.state, "data-site": site.id, "data-state": site.state });
    g.append(svg("circle", { cx: x, cy: y, r: 9 }));
    g.append(svg("text", { x: x + 12, y: y + 4, text: site.id }));
    g.append(svg("title", { text: siteName(site) + ": " + (site.online ? t("dashboard.online_word") : t("site.offline")) }));
    return g;
  }));
}

function deviceBadges(site) {
  if (!site.devices) return el("span", { class: "muted", text: site.online ? t("site.not_reported") : "–" });
  if (!site.devices.length) return el("span", { class: "muted", text: t("dashboard.no_devices") });
  return site.devices.map((d) => {
    const kind = d.kind === "printer" ? "printer" : "scanner";
    const said = t(d.connected ? "dashboard.device_up" : "dashboard.device_down",
      { kind: t("device." + kind), name: d.name, since: fmtTime(d.since_ms) })
      + (d.n_jobs_waiting ? t("dashboard.device_jobs", { n: d.n_jobs_waiting }) : "");
    // The state is said in words for screen readers and on hover; the colour alone would not do.
    return el("span", { class: "dev " + (d.connected ? "up" : "down"), title: said, role: "img", "aria-label": said },
      icon(kind), " " + d.name);
  });
}

/** A site's backlog, every step spelled out (no abbreviation, nothing only on hover). */
function backlog(b) {
  const parts = BACKLOG_STEPS.filter((k) => b[k]);
  if (!parts.length) return el("span", { class: "backlog", text: t("dashboard.backlog_none") });
  return el("ul", { class: "backlog" },
    parts.map((k) => el("li", { "data-step": k }, t("step." + k) + " ", el("b", { text: fmtInt(b[k]) }))));
}

/** Stores with returns or totes waiting, or whose condition checks the sites contradicted. */
function renderStores(s) {
  const rows = s.stores.filter((st) => st.waiting > 0 || st.totes > 0 || st.condition_mismatches > 0);
  fill("store-rows", rows.length === 0
    ? el("tr", {}, el("td", { colspan: 5, class: "muted", text: t("dashboard.stores_none") }))
    : rows.map((st) => el("tr", { "data-store": st.id, class: st.condition_mismatches > 0 ? "flagged" : null },
      el("td", {}, el("strong", { text: st.id }), el("div", { class: "muted", text: st.name })),
      el("td", { class: "num", text: String(st.waiting) }),
      el("td", { class: "num", text: String(st.totes) }),
      el("td", { class: "num", text: `${st.returns_checked} / ${st.units_graded}` }),
      el("td", { class: "num", text: String(st.condition_mismatches) }),
    )));
}

function renderSites(s) {
  fill("site-rows", s.sites.map((site) => el("tr", {
    class: "state-" + site.state, "data-site": site.id, "data-online": String(site.online), "data-state": site.state,
  },
    el("td", {}, el("span", { class: "dot " + site.state }),
      el("a", { href: "/sites/" + encodeURIComponent(site.id), class: "site-link" }, el("strong", { text: site.id })),
      el("div", { class: "muted", text: siteName(site) })),
    el("td", { class: "link live-value", text: site.online ? t("site.online", { v: site.protocol_version }) : t("site.offline") }),
    el("td", { class: "num live-value", text: fmtInt(site.lag_ops) }),
    el("td", { class: "num live-value", text: site.lag_seconds === null ? "–" : String(site.lag_seconds) }),
    el("td", { class: "last-seen", "data-ms": site.last_seen_ms || "", text: fmtAgo(site.last_seen_ms, serverNow()) }),
    el("td", { class: "live-value" }, deviceBadges(site)),
    el("td", { class: "live-value" }, backlog(site.backlog)),
  )));
}

function barChart(rows, opts) {
  const w = 620, rowH = 22, labelW = opts.labelW || 250, h = rows.length * rowH + 6;
  const max = Math.max(1, ...rows.map((r) => r[1]));
  const root = svg("svg", { class: "chart bars", viewBox: `0 0 ${w} ${h}`, role: "img", "aria-label": opts.label });
  rows.forEach(([label, n, cls], i) => {
    const y = i * rowH + 3;
    const bw = ((w - labelW - 60) * n) / max;
    root.append(svg("text", { x: 0, y: y + 14, text: label }));
    root.append(svg("rect", { class: cls || "bar", x: labelW, y, width: Math.max(bw, n ? 2 : 0), height: rowH - 6 }));
    root.append(svg("text", { x: labelW + bw + 6, y: y + 14, text: fmtInt(n) }));
  });
  return root;
}

/** The width of `text` in the charts' 11 px type, roughly: CJK characters are full width. */
function textWidth(text) {
  return [...text].reduce((w, c) => w + (c.codePointAt(0) >= 0x2e80 ? 11.5 : 6.6), 0);
}

/**
 * One line per event kind over the last minutes, its y axis in `unit` per minute, its legend
 * naming each line with its total; `first` numbers the colours on from another chart's.
 */
function lineChart(t0, series, kinds, unit, first) {
  const w = 900, h = 170, left = 56, bottom = 20, top = 22;
  const n = series[kinds[0]] ? series[kinds[0]].length : 0;
  const max = Math.max(1, ...kinds.flatMap((k) => series[k] || []));
  const label = t("dashboard.throughput_label", { unit });
  const chart = svg("svg", { class: "chart", viewBox: `0 0 ${w} ${h + 26}`, role: "img", "aria-label": label });
  chart.append(svg("text", { x: 0, y: 11, text: t("dashboard.per_minute", { unit }) }));
  chart.append(svg("line", { class: "axis", x1: left, y1: h - bottom, x2: w, y2: h - bottom }));
  chart.append(svg("text", { x: 0, y: top + 8, text: fmtInt(max) }));
  chart.append(svg("text", { x: 0, y: h - bottom, text: "0" }));
  const x = (i) => left + ((w - left - 10) * i) / Math.max(1, n - 1);
  const y = (v) => h - bottom - ((h - bottom - top) * v) / max;
  let at = left;
  kinds.forEach((k, i) => {
    const values = series[k] || [];
    const cls = "series-" + (first + i);
    chart.append(svg("polyline", { class: cls, points: values.map((v, j) => `${x(j).toFixed(1)},${y(v).toFixed(1)}`).join(" ") }));
    const words = t("dashboard.legend_entry", { what: t("event." + k), n: fmtInt(values.reduce((a, b) => a + b, 0)) });
    chart.append(svg("rect", { class: cls, x: at, y: h + 8, width: 10, height: 10 }));
    chart.append(svg("text", { x: at + 14, y: h + 17, text: words, "data-event": k }));
    at += 30 + textWidth(words);
  });
  if (n) {
    chart.append(svg("text", { x: left, y: h - 4, text: fmtTime(t0) }));
    chart.append(svg("text", { x: w - 40, y: h - 4, "text-anchor": "end", text: t("dashboard.now") }));
  }
  return chart;
}

function renderPipeline(s) {
  const p = s.pipeline;
  const steps = PIPELINE_STEPS.map((k) => [t("pipeline." + k), p[k], k]);
  for (const [d, n] of Object.entries(p.disposed)) {
    steps.push([t("pipeline.disposed", { d: wordsOr("disposition." + d, d) }), n, "disposed-" + d]);
  }
  const departed = Object.values(p.departed).reduce((a, b) => a + b, 0);
  steps.push([t("pipeline.departed"), departed, "departed"]);
  fill("steps", steps.map(([label, n, key]) => el("div", { class: "step" + (key === "quarantine" && n > s.thresholds.quarantine_max ? " alert" : ""), "data-step": key },
    el("div", { class: "n", text: fmtInt(n) }), el("div", { class: "step-name", text: label }))));
  fill("step-chart", barChart(steps.map(([label, n]) => [label, n]), { label: t("dashboard.at_each_step") }));
  const tp = s.throughput;
  fill("throughput",
    lineChart(tp.start_ms, tp.series, THROUGHPUT_RETURNS, t("dashboard.unit_returns"), 0),
    lineChart(tp.start_ms, tp.series, THROUGHPUT_UNITS, t("dashboard.unit_units"), THROUGHPUT_RETURNS.length));
}

function renderAnomalies(s) {
  const c = document.getElementById("anomaly-count");
  c.textContent = fmtInt(s.n_anomalies);
  c.className = "pill " + (s.n_anomalies ? "warning" : "ok");
  if (!s.anomalies.length) {
    fill("anomaly-rows", el("tr", {}, el("td", { colspan: 6, class: "muted", text: t("dashboard.no_anomalies") })));
    return;
  }
  fill("anomaly-rows", s.anomalies.map((a) => el("tr", { "data-anomaly": a.kind, "data-site": a.site },
    el("td", { text: fmtDateTime(a.at_ms) }),
    el("td", { text: a.site }),
    el("td", {}, el("strong", { text: wordsOr("anomaly." + a.kind, a.kind) })),
    el("td", { text: a.lpn || "–" }),
    el("td", {}, a.rma ? el("a", { href: "#decisions", onclick: () => explain(a.rma), text: a.rma }) : "–"),
    el("td", { class: "why" }, detailText(a)),
  )));
}

/** A category (or a SKU) by its name in the page's language, when its merchant gave one; else its code. */
function categoryName(x) {
  const name = document.documentElement.lang === "ja" ? x.name_ja : x.name_en;
  return name || x.key;
}

/** A return line's reason in words; a line without one is a parcel that came short. */
function reasonWords(code) {
  return code ? wordsOr("reason." + code, code) : t("dashboard.no_reason");
}

function renderInsight(s) {
  const i = s.insight;
  const grades = ["A", "B", "C", "D", "X"].map((g) => [t("dashboard.grade", { g }), i.grades[g] || 0, "grade-" + g]);
  fill("grades", barChart(grades, { label: t("dashboard.grade_mix"), labelW: 120 }));
  const r = i.recovered;
  fill("recovered",
    el("p", {}, el("strong", { class: "big", text: fmtYen(r.total_yen) }), " ", t("dashboard.recovered_how")),
    el("table", {}, el("thead", {}, el("tr", {}, el("th", { text: t("dashboard.col_disposition") }), el("th", { class: "num", text: t("dashboard.col_yen") }))),
      el("tbody", {}, Object.entries(r.by_disposition).map(([d, v]) => el("tr", { "data-disposition": d },
        el("td", { text: wordsOr("disposition." + d, d) }), el("td", { class: "num", text: fmtYen(v) }))))),
    el("p", { class: "muted", text: t("dashboard.resale", { sold: fmtInt(r.n_resale_sold), sold_yen: fmtYen(r.resale_sold_yen),
      listed: fmtInt(r.n_resale_listed), listed_yen: fmtYen(r.resale_listed_yen) }) }),
  );
  // Items not in any catalogue have no category: the store says so with a word of its own.
  const reasonRows = (rows) => rows.length
    ? rows.map((x) => el("tr", { "data-reason": x.reason },
      el("td", { text: x.key === "uncatalogued" ? t("dashboard.uncatalogued") : categoryName(x) }), el("td", { text: reasonWords(x.reason) }),
      el("td", { class: "num", text: fmtInt(x.qty) })))
    : el("tr", {}, el("td", { colspan: 3, class: "muted", text: t("dashboard.no_returns") }));
  fill("reasons-sku", reasonRows(i.reasons_by_sku));
  fill("reasons-category", reasonRows(i.reasons_by_category));
  const st = s.strict;
  document.getElementById("strict-terms").textContent = t("dashboard.strict_terms", {
    score: st.from_score, days: st.return_window_days, standard_days: st.standard_return_window_days,
    fee: fmtYen(st.refund_fee_yen), standard_fee: fmtYen(st.standard_refund_fee_yen), min: s.thresholds.abuse_score_min });
  fill("abuse", i.abuse.length
    ? i.abuse.map((a) => el("tr", { "data-customer": a.customer },
      el("td", { text: a.customer }), el("td", { class: "num", text: a.score }), el("td", { class: "num", text: a.returns_90d }),
      el("td", { class: "why", text: a.factors.filter((f) => f.points).map((f) =>
        t("dashboard.factor", { what: wordsOr("abuse_factor." + f.key, f.name), n: f.count, points: f.points })).join(t("dashboard.list_sep")) })))
    : el("tr", {}, el("td", { colspan: 4, class: "muted", text: t("dashboard.no_abuse", { min: s.thresholds.abuse_score_min }) })));
}

async function explain(rma) {
  document.getElementById("decision-rma").value = rma;
  const out = document.getElementById("decision-out");
  out.className = "";
  out.replaceChildren(el("p", { class: "muted", text: t("dashboard.loading") }));
  try {
    const d = await api("/ui/returns/" + encodeURIComponent(rma.trim()));
    const from = t("dashboard.decision_from", { origin: d.origin })
      + (d.merchant ? t("dashboard.decision_merchant", { merchant: d.merchant }) : "");
    const lines = d.lines.map((l) => t("dashboard.decision_line", { qty: l.qty, sku: l.sku, reason: reasonWords(l.reason) }));
    out.replaceChildren(
      el("h3", {}, el("a", { href: "/returns/" + encodeURIComponent(d.rma), text: d.rma }), " — ",
        wordsOr("status." + d.status, d.status), el("span", { class: "muted", text: " " + from })),
      el("p", {}, el("strong", { text: t("dashboard.routing") + " " }),
        el("span", { id: "decision-routing" }, routingWords(d))),
      el("p", { class: "muted", text: t("dashboard.lines", { lines: lines.join(t("dashboard.list_sep")) }) }),
      el("table", { id: "decision-units" },
        el("thead", {}, el("tr", {}, ["col_unit", "col_site", "col_sku", "col_state", "col_grade", "col_decision", "col_why"]
          .map((h) => el("th", { text: t("dashboard." + h) })))),
        el("tbody", {}, d.units.length ? d.units.map((u) => el("tr", { "data-lpn": u.lpn },
          el("td", { text: u.lpn }), el("td", { text: u.site }), el("td", { text: u.sku }), el("td", { text: stateWords(u.state) }),
          el("td", { text: (u.grade || "–") + (u.defects ? ` (${u.defects})` : "") }),
          el("td", { text: u.decided ? wordsOr("disposition." + u.decided, u.decided) : t("dashboard.not_decided") }),
          el("td", { class: "why" }, u.decision_why ? serverText(u.decision_why) : ""))) : el("tr", {}, el("td", { colspan: 7, class: "muted", text: t("dashboard.no_unit") })))),
      el("details", {}, el("summary", { text: t("dashboard.timeline", { n: d.events.length }) }),
        el("ul", {}, d.events.map((e) => el("li", { "data-kind": e.kind },
          (e.at ? fmtDateTime(Date.parse(e.at)) + " " : ""),
          el("strong", { text: wordsOr("timeline." + e.kind, e.kind) }),
          e.site ? t("return.at_site", { site: e.site }) : "",
          e.lpn ? t("return.of_unit", { lpn: e.lpn }) : "",
          e.detail ? [": ", detailText(e)] : "")))),
    );
  } catch (e) {
    out.replaceChildren(el("p", { class: "error", text: t("dashboard.unreadable", { why: e.message }) }));
  }
}

document.getElementById("decision-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const rma = document.getElementById("decision-rma").value;
  if (rma.trim()) explain(rma);
});

function setLive(text, cls) {
  const live = document.getElementById("live");
  live.textContent = text;
  live.className = "pill " + cls;
}

/** Marks the link up or down: the banner, the greyed figures, the header's pill. */
function setLink(up) {
  linkUp = up;
  document.body.classList.toggle("stale", !up && state !== null);
  document.getElementById("link-banner").hidden = up || state === null;
  if (up) setLive(t("dashboard.live"), "ok");
  else setLive(t("dashboard.link_down"), "bad");
  tick();
}

/** Brings the ages and the banner up to date, and notices a link gone silent. */
function tick() {
  if (linkUp && Date.now() - lastEventAt > LINK_SILENT_MS) {
    setLink(false);
    return;
  }
  const now = serverNow();
  for (const td of document.querySelectorAll("td.last-seen")) {
    td.textContent = fmtAgo(Number(td.dataset.ms) || null, now);
  }
  if (!linkUp && state) {
    const asOf = document.getElementById("data-as-of");
    asOf.textContent = `${fmtTime(state.now_ms)} (${fmtAgo(state.now_ms, now)})`;
    asOf.dataset.ms = String(state.now_ms);
  }
}

function follow() {
  const source = new EventSource("/ui/events");
  source.addEventListener("snapshot", (ev) => {
    try {
      received(JSON.parse(ev.data));
    } catch (e) {
      setLive(t("dashboard.bad_update"), "bad");
    }
  });
  source.addEventListener("delta", (ev) => {
    if (!state) return;
    try {
      received(applyDelta(state, JSON.parse(ev.data)));
    } catch (e) {
      // A change that does not fit what this page holds: start again from a whole state.
      source.close();
      state = null;
      setTimeout(follow, 0);
    }
  });
  source.addEventListener("logout", () => {
    source.close();
    location.href = "/login?next=/";
  });
  source.addEventListener("problem", () => setLive(t("dashboard.problem"), "warning"));
  source.onerror = () => {
    setLink(false);
    // The browser retries by itself unless the server refused the stream (a lost session
    // answers 401, which api() turns into the login page).
    if (source.readyState === EventSource.CLOSED) {
      setTimeout(() => api("/ui/state").then(received).then(follow, () => setTimeout(follow, 3000)), 2000);
    }
  };
}

setInterval(tick, TICK_MS);
api("/ui/state")
  .then(received)
  .catch((e) => setLive(e.message, "bad"))
  .finally(follow);
