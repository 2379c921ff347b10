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

const STEP_LABELS = [
  ["expected", "expected"],
  ["receiving", "receiving"],
  ["in_transit", "in transit (transfers)"],
  ["received", "received"],
  ["quarantine", "quarantine"],
  ["graded", "graded"],
];
const THROUGHPUT_LABELS = {
  registered: "registered",
  unit_received: "received",
  unit_graded: "graded",
  disposition_set: "disposed",
  unit_departed: "departed",
};

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
  online.textContent = `${s.n_online}/${s.sites.length} sites online`;
  online.dataset.online = String(s.n_online);
  online.className = "pill " + (s.n_online === s.sites.length ? "ok" : "bad");
  const ac = document.getElementById("alert-count");
  const shouting = s.alerts.filter((a) => !a.silence).length;
  ac.textContent = shouting === 1 ? "1 alert" : `${shouting} alerts`;
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
    p.textContent = "Not done: " + (await errorText(res));
    p.hidden = false;
  }
}

/** What silences an alert, in words: who and when. */
function silenceWords(sl) {
  return sl.kind === "muted"
    ? `muted until ${fmtDateTime(sl.until_ms)} by key ${sl.by_key_id}`
    : `acknowledged by key ${sl.by_key_id} at ${fmtDateTime(sl.at_ms)}; it shouts again if it clears and comes back`;
}

function alertItem(a) {
  const item = el("li", { class: "kind-" + a.kind + (a.silence ? " silenced" : ""), "data-kind": a.kind,
    "data-site": a.site, "data-alert": a.key, "data-silenced": a.silence ? a.silence.kind : null },
    el("strong", { text: a.site }), " — ", a.message);
  if (a.silence) {
    item.append(el("span", { class: "silence", text: " (" + silenceWords(a.silence) + ")" }));
    return item;
  }
  const minutes = el("select", { class: "mute-minutes", "aria-label": "Mute " + a.key + " for" },
    el("option", { value: "60", text: "1 hour" }), el("option", { value: "240", text: "4 hours" }),
    el("option", { value: "1440", text: "1 day" }));
  item.append(el("span", { class: "alert-actions" },
    el("button", { type: "button", class: "ack", "aria-label": "Acknowledge " + a.key,
      onclick: () => silenceAlert("/ui/alerts/acknowledge", { alert: a.key }) }, "Acknowledge"),
    minutes,
    el("button", { type: "button", class: "mute", "aria-label": "Mute " + a.key,
      onclick: () => silenceAlert("/ui/alerts/mute", { alert: a.key, minutes: Number(minutes.value) }) }, "Mute")));
  return item;
}

function renderAlerts(s) {
  const box = document.getElementById("alerts");
  box.classList.toggle("quiet", s.alerts.every((a) => a.silence));
  const drawn = JSON.stringify([s.alerts, s.time_zone]);
  if (drawn === drawnAlerts) return;
  drawnAlerts = drawn;
  const t = s.thresholds;
  if (!s.alerts.length) {
    fill("alert-list", el("li", { text: `No alerts. Thresholds: offline ${t.offline_minutes} min, lag ${t.lag_ops} ops or ${t.lag_seconds} s, quarantine over ${t.quarantine_max}, device down ${t.device_down_minutes} min.` }));
    return;
  }
  fill("alert-list", s.alerts.map(alertItem));
}

function renderMap(s) {
  let root = document.querySelector("#map-svg svg");
  if (!root) {
    root = svg("svg", { viewBox: `0 0 ${JAPAN.width} ${JAPAN.height}`, role: "img", "aria-label": "Map of Japan with the sites and stores" });
    root.append(japanBase(), svg("g", { id: "map-stores" }), svg("g", { id: "map-sites" }));
    fill("map-svg", root);
  }
  const stores = root.querySelector("#map-stores");
  stores.replaceChildren(...s.stores.map((st) => {
    const [x, y] = project(st.latitude, st.longitude);
    const cls = "store" + (st.waiting >= 5 ? " busy" : st.waiting > 0 ? " waiting" : "")
      + (st.condition_mismatches > 0 ? " flagged" : "");
    const r = svg("rect", { class: cls, x: x - 3.5, y: y - 3.5, width: 7, height: 7, "data-store": st.id });
    r.append(svg("title", { text: `${st.name} (${st.kind}): ${st.waiting} waiting, ${st.totes} totes to ship`
      + (st.condition_mismatches ? `, ${st.condition_mismatches} condition checks contradicted by the sites` : "") }));
    return r;
  }));
  const sites = root.querySelector("#map-sites");
  sites.replaceChildren(...s.sites.map((site) => {
    const [x, y] = project(site.latitude, site.longitude);
    const g = svg("g", { class: "site state-" + site.state, "data-site": site.id, "data-state": site.state });
    g.append(svg("circle", { cx: x, cy: y, r: 9 }));
    g.append(svg("text", { x: x + 12, y: y + 4, text: site.id }));
    g.append(svg("title", { text: `${site.name}: ${site.online ? "online" : "offline"}` }));
    return g;
  }));
}

function deviceBadges(site) {
  if (!site.devices) return el("span", { class: "muted", text: site.online ? "not reported" : "–" });
  if (!site.devices.length) return el("span", { class: "muted", text: "none" });
  return site.devices.map((d) => el("span", {
    class: "dev " + (d.connected ? "up" : "down"),
    title: `${d.kind} ${d.name}: ${d.connected ? "connected" : "disconnected"} since ${fmtTime(d.since_ms)}` + (d.n_jobs_waiting ? `, ${d.n_jobs_waiting} jobs waiting` : ""),
  }, icon(d.kind === "printer" ? "printer" : "scanner"), " " + d.name));
}

function backlog(b) {
  const parts = [["exp", b.expected], ["rcv", b.received], ["qtn", b.quarantine], ["grd", b.graded], ["dsp", b.disposed], ["bin", b.placed], ["in", b.inbound]];
  return el("span", { class: "backlog", title: "expected returns, received, quarantine, graded, disposed (to put away), in bins, transfers inbound" },
    parts.map(([k, v], i) => [i ? " · " : "", k + " ", el("b", { text: fmtInt(v) })]));
}

/** Stores with returns or totes waiting, or whose condition checks the sites contradicted. */
function renderStores(s) {
  const rows = s.stores.filter((st) => st.waiting > 0 || st.totes > 0 || st.condition_mismatches > 0);
  fill("store-rows", rows.length === 0
    ? el("tr", {}, el("td", { colspan: 5, class: "muted", text: "nothing waits at any store" }))
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
      el("div", { class: "muted", text: site.name })),
    el("td", { class: "link live-value", text: site.online ? `online (v${site.protocol_version})` : "offline" }),
    el("td", { class: "num live-value", text: fmtInt(site.lag_ops) }),
    el("td", { class: "num live-value", text: site.lag_seconds === null ? "–" : String(site.lag_seconds) }),
    el("td", { class: "last-seen", "data-ms": site.last_seen_ms || "", text: fmtAgo(site.last_seen_ms, serverNow()) }),
    el("td", { class: "live-value" }, deviceBadges(site)),
    el("td", { class: "live-value" }, backlog(site.backlog)),
  )));
}

function barChart(rows, opts) {
  const w = 520, rowH = 22, labelW = opts.labelW || 150, h = rows.length * rowH + 6;
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

function renderPipeline(s) {
  const p = s.pipeline;
  const steps = STEP_LABELS.map(([k, label]) => [label, p[k], k]);
  for (const [d, n] of Object.entries(p.disposed)) steps.push([d, n, "disposed-" + d]);
  const departed = Object.values(p.departed).reduce((a, b) => a + b, 0);
  steps.push(["departed", departed, "departed"]);
  fill("steps", steps.map(([label, n, key]) => el("div", { class: "step" + (key === "quarantine" && n > s.thresholds.quarantine_max ? " alert" : ""), "data-step": key },
    el("div", { class: "n", text: fmtInt(n) }), el("div", { class: "step-name", text: label }))));
  const chartRows = steps.map(([label, n]) => [label, n]);
  const t = s.throughput;
  const kinds = Object.keys(THROUGHPUT_LABELS);
  const w = 900, h = 200, left = 40, bottom = 20;
  const n = t.series[kinds[0]] ? t.series[kinds[0]].length : 0;
  const max = Math.max(1, ...kinds.flatMap((k) => t.series[k] || []));
  const chart = svg("svg", { class: "chart", viewBox: `0 0 ${w} ${h + 24}`, role: "img", "aria-label": "Throughput per minute" });
  chart.append(svg("line", { class: "axis", x1: left, y1: h - bottom, x2: w, y2: h - bottom }));
  chart.append(svg("text", { x: 0, y: 12, text: fmtInt(max) }));
  chart.append(svg("text", { x: 0, y: h - bottom, text: "0" }));
  const x = (i) => left + ((w - left - 10) * i) / Math.max(1, n - 1);
  const y = (v) => h - bottom - ((h - bottom - 10) * v) / max;
  kinds.forEach((k, si) => {
    const values = t.series[k] || [];
    chart.append(svg("polyline", { class: "series-" + si, points: values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ") }));
    chart.append(svg("rect", { class: "series-" + si, x: left + si * 150, y: h + 6, width: 10, height: 10 }));
    chart.append(svg("text", { x: left + si * 150 + 14, y: h + 15, text: `${THROUGHPUT_LABELS[k]} (${values.reduce((a, b) => a + b, 0)})` }));
  });
  if (n) {
    chart.append(svg("text", { x: left, y: h - 4, text: fmtTime(t.start_ms) }));
    chart.append(svg("text", { x: w - 60, y: h - 4, text: "now" }));
  }
  fill("step-chart", barChart(chartRows, { label: "Units at each step" }));
  fill("throughput", chart);
}

function renderAnomalies(s) {
  const c = document.getElementById("anomaly-count");
  c.textContent = fmtInt(s.n_anomalies);
  c.className = "pill " + (s.n_anomalies ? "warning" : "ok");
  if (!s.anomalies.length) {
    fill("anomaly-rows", el("tr", {}, el("td", { colspan: 6, class: "muted", text: "None recorded." })));
    return;
  }
  fill("anomaly-rows", s.anomalies.map((a) => el("tr", { "data-anomaly": a.kind, "data-site": a.site },
    el("td", { text: fmtTime(a.at_ms) }),
    el("td", { text: a.site }),
    el("td", {}, el("strong", { text: a.kind })),
    el("td", { text: a.lpn || "–" }),
    el("td", {}, a.rma ? el("a", { href: "#decisions", onclick: () => explain(a.rma), text: a.rma }) : "–"),
    el("td", { class: "why", text: a.detail }),
  )));
}

function renderInsight(s) {
  const i = s.insight;
  const grades = ["A", "B", "C", "D", "X"].map((g) => ["grade " + g, i.grades[g] || 0, "grade-" + g]);
  fill("grades", barChart(grades, { label: "Grade mix", labelW: 80 }));
  const r = i.recovered;
  fill("recovered",
    el("p", {}, el("strong", { class: "big", text: fmtYen(r.total_yen) }), " estimated by the value model (resale counts what sold)."),
    el("table", {}, el("tbody", {}, Object.entries(r.by_disposition).map(([d, v]) => el("tr", {}, el("td", { text: d }), el("td", { class: "num", text: fmtYen(v) }))))),
    el("p", { class: "muted", text: `Resale: ${fmtInt(r.n_resale_sold)} sold for ${fmtYen(r.resale_sold_yen)}; ${fmtInt(r.n_resale_listed)} listed at ${fmtYen(r.resale_listed_yen)}.` }),
  );
  const reasonRows = (rows) => rows.length
    ? rows.map((x) => el("tr", {}, el("td", { text: x.key }), el("td", { text: x.reason }), el("td", { class: "num", text: fmtInt(x.qty) })))
    : el("tr", {}, el("td", { colspan: 3, class: "muted", text: "No returns yet." }));
  fill("reasons-sku", reasonRows(i.reasons_by_sku));
  fill("reasons-category", reasonRows(i.reasons_by_category));
  fill("abuse", i.abuse.length
    ? i.abuse.map((a) => el("tr", { "data-customer": a.customer },
      el("td", { text: a.customer }), el("td", { class: "num", text: a.score }), el("td", { class: "num", text: a.returns_90d }),
      el("td", { class: "why", text: a.factors.filter((f) => f.points).map((f) => `${f.name}: ${f.count} (+${f.points})`).join("; ") })))
    : el("tr", {}, el("td", { colspan: 4, class: "muted", text: `No customer at or above score ${s.thresholds.abuse_score_min}.` })));
}

async function explain(rma) {
  document.getElementById("decision-rma").value = rma;
  const out = document.getElementById("decision-out");
  out.className = "";
  out.replaceChildren(el("p", { class: "muted", text: "Loading…" }));
  try {
    const d = await api("/ui/returns/" + encodeURIComponent(rma.trim()));
    out.replaceChildren(
      el("h3", {}, `${d.rma} — ${d.status}`, el("span", { class: "muted", text: ` from ${d.origin}` + (d.merchant ? `, merchant ${d.merchant}` : "") })),
      el("p", {}, el("strong", { text: "Routing: " }), el("span", { id: "decision-routing", text: `to ${d.site}: ${d.routing}` })),
      el("p", { class: "muted", text: "Lines: " + d.lines.map((l) => `${l.qty}× ${l.sku} (${l.reason || "short"})`).join(", ") }),
      el("table", { id: "decision-units" },
        el("thead", {}, el("tr", {}, ["Unit", "Site", "SKU", "State", "Grade", "Centre's disposition", "Why"].map((h) => el("th", { text: h })))),
        el("tbody", {}, d.units.length ? d.units.map((u) => el("tr", { "data-lpn": u.lpn },
          el("td", { text: u.lpn }), el("td", { text: u.site }), el("td", { text: u.sku }), el("td", { text: u.state }),
          el("td", { text: (u.grade || "–") + (u.defects ? ` (${u.defects})` : "") }),
          el("td", { text: u.decided || "not decided yet" }),
          el("td", { class: "why", text: u.decision_why || "" }))) : el("tr", {}, el("td", { colspan: 7, class: "muted", text: "No unit received yet." })))),
      el("details", {}, el("summary", { text: `Timeline (${d.events.length})` }),
        el("ul", {}, d.events.map((e) => el("li", { text: `${e.at ? fmtDateTime(Date.parse(e.at)) : ""} ${e.kind}${e.site ? " at " + e.site : ""}${e.lpn ? " " + e.lpn : ""}: ${e.detail || ""}` })))),
    );
  } catch (e) {
    out.replaceChildren(el("p", { class: "error", text: e.message }));
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
  if (up) setLive("live", "ok");
  else setLive("link down", "bad");
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
      setLive("bad update", "bad");
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
  source.addEventListener("problem", (ev) => setLive(ev.data, "warning"));
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
