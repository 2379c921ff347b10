// Helpers shared by the Modori pages. Plain JS, no build step, no inline script (the pages'
// Content-Security-Policy forbids it). Text from the server is always set with textContent,
// never parsed as HTML.
"use strict";

/** Makes an element: el("td", {class: "num"}, "12", otherNode). */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** Makes an SVG element. */
function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined) continue;
    if (k === "text") node.textContent = v;
    else node.setAttribute(k, String(v));
  }
  for (const c of children.flat(Infinity)) if (c) node.append(c);
  return node;
}

/** Outline icons, drawn inline so they need no emoji font (24 × 24, stroked in the text's colour). */
const ICONS = {
  printer: "M7 9V3h10v6M7 17H4v-7h16v7h-3M7 14h10v7H7z",
  scanner: "M3 6v12M6 6v12M9 6v8M12 6v12M15 6v8M18 6v12M21 6v12",
};

/** An icon of `ICONS` as an inline SVG, hidden from screen readers (the text next to it names it). */
function icon(name) {
  const node = svg("svg", { class: "icon", viewBox: "0 0 24 24", "aria-hidden": "true", focusable: "false" },
    svg("path", { d: ICONS[name] }));
  return node;
}

/** The page's texts in its language (a JSON block the server fills), by `section.key`. */
const TEXTS = (() => {
  const node = document.getElementById("texts");
  try {
    return node ? JSON.parse(node.textContent) : {};
  } catch (_) {
    return {};
  }
})();

/** The text `key` with its `{name}` holes filled from `vars`; the key itself when missing. */
function t(key, vars) {
  let text = Object.prototype.hasOwnProperty.call(TEXTS, key) ? TEXTS[key] : key;
  for (const [k, v] of Object.entries(vars || {})) text = text.split("{" + k + "}").join(String(v));
  return text;
}

/** An English text of the server (an alert's or an anomaly's detail), marked as English. */
function serverText(text) {
  return el("span", { lang: "en", text });
}

/** A site's name in the page's language: its Japanese name on a Japanese page, when it has one. */
function siteName(site) {
  return document.documentElement.lang === "ja" && site.name_ja ? site.name_ja : site.name;
}

/** The section that says a detail's parameter in words, by the parameter's name. */
const DETAIL_PARAM_WORDS = {
  status: "status.", state: "unit_state.", disposition: "disposition.", receipt: "receipt.",
  step: "refused_step.", departure: "departure.", op: "op.", transit: "transit.", method: "method.",
};

/**
 * An anomaly's or a timeline event's detail in the page's language (`detail.<code>` with its
 * parameters, codes among them in words); one stored without a code keeps the server's
 * English, marked as English.
 */
function detailText(d) {
  const key = "detail." + d.detail_code;
  if (!d.detail_code || t(key) === key) return d.detail ? serverText(d.detail) : null;
  const said = (k, v) => (t(k) === k ? v : t(k));
  const vars = {};
  for (const [k, v] of Object.entries(d.detail_params || {})) {
    if (k === "defects") vars[k] = v.split(",").map((c) => said("defect." + c, c)).join(t("common.list_sep"));
    else if (k.endsWith("_yen")) vars[k] = fmtYen(Number(v));
    else vars[k] = DETAIL_PARAM_WORDS[k] ? said(DETAIL_PARAM_WORDS[k] + v, v) : v;
  }
  return el("span", { class: "detail-text", text: t(key, vars) });
}

/**
 * An alert's figures in the page's language (`alert_text.*` with the alert's parameters); an
 * alert the page has no words for keeps the server's English.
 */
function alertText(a) {
  const key = "alert_text." + a.kind;
  if (t(key) === key || !a.params) return serverText(a.message);
  const vars = {};
  for (const [k, v] of Object.entries(a.params)) {
    const device = "device." + v;
    vars[k] = typeof v === "number" ? fmtInt(v) : k === "device_kind" && t(device) !== device ? t(device) : v;
  }
  return el("span", { class: "alert-text", text: t(key, vars) });
}

/**
 * Why a return went to its site, in the page's language, from the candidates the routing
 * weighed (`routing_candidates`: best first); a return stored without them keeps the server's
 * English.
 */
function routingWords(d) {
  const all = d.routing_candidates || [];
  const best = all.find((c) => c.site === d.site && c.score !== null && c.score !== undefined);
  const reasons = { full: "routing.excluded_full", no_testing: "routing.excluded_no_testing" };
  const left = all.filter((c) => c.excluded && c.distance_km < (best ? best.distance_km : 0));
  if (!best || left.some((c) => !reasons[c.excluded_code])) return serverText(d.routing);
  const km = (c) => Math.round(c.distance_km);
  const score = (c) => Math.round(c.score);
  const parts = [t("routing.best", { site: best.site, km: km(best), routed: best.routed_today,
    capacity: best.daily_capacity, score: score(best) })];
  const next = all[all.indexOf(best) + 1];
  if (next && next.score !== null && next.score !== undefined) {
    parts.push(t("routing.next", { site: next.site, km: km(next), score: score(next) }));
  }
  for (const c of left) {
    parts.push(t(reasons[c.excluded_code], { site: c.site, km: km(c), routed: c.routed_today, capacity: c.daily_capacity }));
  }
  return el("span", { class: "routing-words", text: parts.join("") });
}

// The language switch comes back to the page it was used on, whatever its address.
(() => {
  const link = document.getElementById("lang-switch");
  if (!link) return;
  const url = new URL(link.getAttribute("href"), location.href);
  url.searchParams.set("next", location.pathname + location.search);
  link.setAttribute("href", url.pathname + url.search);
})();

/** Replaces the children of the element with id `id`. */
function fill(id, ...children) {
  const node = document.getElementById(id);
  if (node) node.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined));
  return node;
}

/** The error message of a JSON error answer ({"error": {"message", "field"}}), or the status. */
async function errorText(res) {
  try {
    const body = await res.json();
    const e = body.error || {};
    return (e.field ? e.field + ": " : "") + (e.message || res.statusText);
  } catch (_) {
    return res.status + " " + res.statusText;
  }
}

/** Fetches JSON with the session cookie; a lost session goes back to the login form. */
async function api(path, options) {
  const res = await fetch(path, Object.assign({ credentials: "same-origin" }, options || {}));
  if (res.status === 401) {
    location.href = "/login?next=" + encodeURIComponent(location.pathname);
    throw new Error("the session ended");
  }
  if (!res.ok) throw new Error(await errorText(res));
  return res.json();
}

/** POSTs JSON. */
function postJson(path, body) {
  return api(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

function fmtInt(n) {
  return n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US");
}

/** Yen, a negative amount with a true minus sign before the currency: "−¥200". */
function fmtYen(n) {
  if (n === null || n === undefined) return "–";
  const yen = Math.round(n);
  return (yen < 0 ? "\u2212" : "") + "¥" + Math.abs(yen).toLocaleString("en-US");
}

/** The zone times are shown in: the coordinator's `http.time_zone` once a page is told it. */
let displayZone = "Asia/Tokyo";

/** Shows times in `zone` from now on; a name this browser does not know keeps the last one. */
function setTimeZone(zone) {
  try {
    new Intl.DateTimeFormat("en-GB", { timeZone: zone });
    displayZone = zone;
  } catch (_) {
    // RangeError: not a zone here.
  }
}

function fmtTime(ms) {
  if (!ms) return "never";
  return new Date(ms).toLocaleTimeString("en-GB", { hour12: false, timeZone: displayZone });
}

/** "2026-12-05 14:03:22" in the display zone. */
function fmtDateTime(ms) {
  if (!ms) return "–";
  return new Date(ms).toLocaleString("sv-SE", { hour12: false, timeZone: displayZone });
}

/** "3 s ago", "5 min ago", "2 h ago" (in the page's language where it has the words). */
function fmtAgo(ms, now) {
  const words = (key, n, english) =>
    Object.prototype.hasOwnProperty.call(TEXTS, "common." + key) ? t("common." + key, { n }) : english;
  if (!ms) return words("never", 0, "never");
  const s = Math.max(0, Math.round(((now || Date.now()) - ms) / 1000));
  if (s < 90) return words("ago_s", s, s + " s ago");
  if (s < 5400) return words("ago_min", Math.round(s / 60), Math.round(s / 60) + " min ago");
  return words("ago_h", Math.round(s / 3600), Math.round(s / 3600) + " h ago");
}

// The login form: where to go after, and why the last attempt failed.
if (document.body && document.body.classList.contains("login-page")) {
  const params = new URLSearchParams(location.search);
  const next = params.get("next");
  if (["/", "/store", "/returns", "/quarantine"].includes(next)) document.getElementById("next").value = next;
  const reasons = {
    key: t("login.error_key"),
    scope: t("login.error_scope"),
  };
  const why = params.get("error");
  if (why) {
    const p = document.getElementById("login-error");
    p.textContent = reasons[why] || t("login.error_other");
    p.hidden = false;
  }
}
