// One site for ops: its link, alerts, devices, backlog at each step, throughput and newest
// anomalies, read again every few seconds. Steps and events are named in words.
"use strict";

/** How often the page reads the site again. */
const REFRESH_MS = 5000;

/** The steps of a site's backlog, in the order units pass them. */
const STEPS = ["expected", "receiving", "received", "quarantine", "graded", "disposed", "placed", "inbound"];
/** Timeline events with their words (`event.*`); any other is named by its code. */
function eventWords(kind) {
  const words = t("event." + kind);
  return words === "event." + kind ? kind : words;
}

const siteId = decodeURIComponent(location.pathname.split("/").pop());

function text(id, value) {
  document.getElementById(id).textContent = value === null || value === undefined ? "–" : value;
}

function show(p) {
  setTimeZone(p.time_zone);
  const s = p.site;
  document.title = "Modori — " + s.id;
  text("site-id", s.id);
  text("site-name", siteName(s));
  text("as-of", t("site.as_of", { time: fmtDateTime(p.now_ms) }));
  text("link", s.online ? t("site.online", { v: s.protocol_version }) : t("site.offline"));
  document.getElementById("link").dataset.online = String(s.online);
  text("last-seen", s.last_seen_ms ? `${fmtDateTime(s.last_seen_ms)} (${fmtAgo(s.last_seen_ms, p.now_ms)})` : t("site.never"));
  text("lag", s.lag_ops === null ? t("site.unknown")
    : s.lag_seconds ? t("site.lag_seconds", { n: fmtInt(s.lag_ops), s: s.lag_seconds }) : t("site.lag_ops", { n: fmtInt(s.lag_ops) }));
  fill("site-alerts", p.alerts.length
    ? p.alerts.map((a) => el("li", { "data-kind": a.kind, class: a.silence ? "muted" : "error" },
      el("strong", { text: t("alert." + a.kind) }), ": ", alertText(a),
      a.silence ? ` (${t("site.silenced", { kind: t("silence." + a.silence.kind), key: a.silence.by_key_id })})` : ""))
    : el("li", { class: "muted", text: t("site.no_alert") }));
  fill("device-rows", !s.devices
    ? el("tr", {}, el("td", { colspan: 5, class: "muted", text: s.online ? t("site.not_reported") : t("site.unknown_offline") }))
    : !s.devices.length
      ? el("tr", {}, el("td", { colspan: 5, class: "muted", text: t("site.no_device") }))
      : s.devices.map((d) => el("tr", { "data-device": d.name, "data-connected": String(d.connected) },
        el("td", {}, icon(d.kind === "printer" ? "printer" : "scanner"), " ", d.name),
        el("td", { text: t("device." + (d.kind === "printer" ? "printer" : "scanner")) }),
        el("td", { text: d.connected ? t("site.connected") : t("site.disconnected") }),
        el("td", { text: fmtDateTime(d.since_ms) }),
        el("td", { class: "num", text: fmtInt(d.n_jobs_waiting) }))));
  fill("backlog-rows", STEPS.map((k) => el("tr", { "data-step": k },
    el("td", { text: t("step." + k) }), el("td", { class: "num", text: fmtInt(s.backlog[k]) }))));
  const kinds = Object.keys(p.throughput).sort();
  fill("throughput-rows", kinds.length
    ? kinds.map((k) => {
      const series = p.throughput[k];
      const total = series.reduce((a, b) => a + b, 0);
      const recent = series.slice(-5).reduce((a, b) => a + b, 0);
      return el("tr", { "data-event": k },
        el("td", { text: eventWords(k) }), el("td", { class: "num", text: fmtInt(total) }),
        el("td", { class: "num", text: fmtInt(recent) }),
        el("td", { class: "num", text: (total / series.length).toFixed(1) }));
    })
    : el("tr", {}, el("td", { colspan: 4, class: "muted", text: t("site.quiet") })));
  fill("anomaly-rows", p.anomalies.length
    ? p.anomalies.map((a) => el("tr", { "data-anomaly": a.kind },
      el("td", { text: fmtDateTime(a.at_ms) }), el("td", { text: t("anomaly." + a.kind) }), el("td", { text: a.lpn || "–" }),
      el("td", {}, a.rma ? el("a", { href: "/returns/" + encodeURIComponent(a.rma), text: a.rma }) : "–"),
      el("td", {}, detailText(a))))
    : el("tr", {}, el("td", { colspan: 5, class: "muted", text: t("site.no_anomaly") })));
}

async function load() {
  const p = document.getElementById("load-error");
  try {
    show(await api("/ui/sites/" + encodeURIComponent(siteId)));
    p.hidden = true;
  } catch (e) {
    p.textContent = t("site.unreadable", { why: e.message });
    p.hidden = false;
  }
}
load();
setInterval(load, REFRESH_MS);
