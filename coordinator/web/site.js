// One site for ops: its link, alerts, devices, backlog at each step, throughput and newest
// anomalies, read again every few seconds. Steps and events are named in words.
"use strict";

/** How often the page reads the site again. */
const REFRESH_MS = 5000;

const STEP_WORDS = [
  ["expected", "Returns expected"],
  ["receiving", "Returns being received"],
  ["received", "Units received"],
  ["quarantine", "Units in quarantine"],
  ["graded", "Units graded, not decided"],
  ["disposed", "Units decided, to put away or ship"],
  ["placed", "Units in bins"],
  ["inbound", "Transfers on their way here"],
];
const EVENT_WORDS = {
  registered: "Returns registered",
  unit_received: "Units received",
  unit_matched: "Units matched",
  unit_tested: "Units tested",
  unit_graded: "Units graded",
  disposition_set: "Decisions made",
  put_away: "Units put away",
  unit_departed: "Units departed",
  parcel_closed: "Parcels closed",
};

const siteId = decodeURIComponent(location.pathname.split("/").pop());

function text(id, value) {
  document.getElementById(id).textContent = value === null || value === undefined ? "–" : value;
}

function show(p) {
  setTimeZone(p.time_zone);
  const s = p.site;
  document.title = "Modori — " + s.id;
  text("site-id", s.id);
  text("site-name", s.name);
  text("as-of", "as of " + fmtDateTime(p.now_ms));
  text("link", s.online ? `online (protocol v${s.protocol_version})` : "offline");
  document.getElementById("link").dataset.online = String(s.online);
  text("last-seen", s.last_seen_ms ? `${fmtDateTime(s.last_seen_ms)} (${fmtAgo(s.last_seen_ms, p.now_ms)})` : "never since the coordinator started");
  text("lag", s.lag_ops === null ? "unknown" : `${fmtInt(s.lag_ops)} ops` + (s.lag_seconds ? `, ${s.lag_seconds} s` : ""));
  fill("site-alerts", p.alerts.length
    ? p.alerts.map((a) => el("li", { "data-kind": a.kind, class: a.silence ? "muted" : "error" },
      a.message + (a.silence ? ` (${a.silence.kind} by key ${a.silence.by_key_id})` : "")))
    : el("li", { class: "muted", text: "No alert." }));
  fill("device-rows", !s.devices
    ? el("tr", {}, el("td", { colspan: 5, class: "muted", text: s.online ? "Not reported yet." : "Unknown while offline." }))
    : !s.devices.length
      ? el("tr", {}, el("td", { colspan: 5, class: "muted", text: "No device." }))
      : s.devices.map((d) => el("tr", { "data-device": d.name, "data-connected": String(d.connected) },
        el("td", {}, icon(d.kind === "printer" ? "printer" : "scanner"), " ", d.name),
        el("td", { text: d.kind }),
        el("td", { text: d.connected ? "connected" : "disconnected" }),
        el("td", { text: fmtDateTime(d.since_ms) }),
        el("td", { class: "num", text: fmtInt(d.n_jobs_waiting) }))));
  fill("backlog-rows", STEP_WORDS.map(([k, words]) => el("tr", { "data-step": k },
    el("td", { text: words }), el("td", { class: "num", text: fmtInt(s.backlog[k]) }))));
  const kinds = Object.keys(p.throughput).sort();
  fill("throughput-rows", kinds.length
    ? kinds.map((k) => {
      const series = p.throughput[k];
      const total = series.reduce((a, b) => a + b, 0);
      const recent = series.slice(-5).reduce((a, b) => a + b, 0);
      return el("tr", { "data-event": k },
        el("td", { text: EVENT_WORDS[k] || k }), el("td", { class: "num", text: fmtInt(total) }),
        el("td", { class: "num", text: fmtInt(recent) }),
        el("td", { class: "num", text: (total / series.length).toFixed(1) }));
    })
    : el("tr", {}, el("td", { colspan: 4, class: "muted", text: "Nothing in the last 30 minutes." })));
  fill("anomaly-rows", p.anomalies.length
    ? p.anomalies.map((a) => el("tr", { "data-anomaly": a.kind },
      el("td", { text: fmtDateTime(a.at_ms) }), el("td", { text: a.kind }), el("td", { text: a.lpn || "–" }),
      el("td", {}, a.rma ? el("a", { href: "/returns/" + encodeURIComponent(a.rma), text: a.rma }) : "–"),
      el("td", { text: a.detail })))
    : el("tr", {}, el("td", { colspan: 5, class: "muted", text: "No anomaly." })));
}

async function load() {
  const p = document.getElementById("load-error");
  try {
    show(await api("/ui/sites/" + encodeURIComponent(siteId)));
    p.hidden = true;
  } catch (e) {
    p.textContent = "This site could not be read: " + e.message;
    p.hidden = false;
  }
}
load();
setInterval(load, REFRESH_MS);
