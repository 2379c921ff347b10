// One return for ops: what it is, where it went and why, its units and what was decided for
// each, its timeline in the page's time zone, and the actions ops may take. Each action asks
// for a confirmation first and posts with the session's CSRF token; a refusal is shown in the
// coordinator's words.
"use strict";

/** `key` in the page's words, or `fallback` (a code the texts do not know) as it is. */
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

const rma = decodeURIComponent(location.pathname.split("/").pop());
let csrf = "";

function text(id, value) {
  document.getElementById(id).textContent = value === null || value === undefined || value === "" ? "–" : value;
}

function show(r) {
  csrf = r.csrf;
  setTimeZone(r.time_zone);
  document.title = "Modori — " + r.rma;
  text("rma", r.rma);
  text("status", wordsOr("status." + r.status, r.status));
  document.getElementById("status").dataset.status = r.status;
  text("site", r.site);
  text("merchant", r.merchant);
  text("origin", r.origin);
  fill("routing", routingWords(r));
  showTradeIn(r.trade_in);
  showRepair(r.repair);
  fill("line-rows", r.lines.map((l) => el("tr", {},
    el("td", { text: l.sku }), el("td", { class: "num", text: l.qty }), el("td", { text: l.reason ? wordsOr("reason." + l.reason, l.reason) : "–" }))));
  fill("unit-rows", r.units.length
    ? r.units.map((u) => el("tr", { "data-lpn": u.lpn },
      el("td", { text: u.lpn }), el("td", { text: u.sku }),
      el("td", { text: u.site + (u.transfer_to ? " → " + u.transfer_to : "") }),
      el("td", { text: stateWords(u.state) }), el("td", { text: u.grade || "–" }),
      el("td", { text: u.decided ? wordsOr("disposition." + u.decided, u.decided) : "–" }),
      el("td", { lang: "en", text: u.decision_why || "–" }),
      el("td", {}, transferControl(u, r.sites))))
    : el("tr", {}, el("td", { colspan: 8, class: "muted", text: t("return.nothing_arrived") })));
  fill("timeline", r.events.map((e) => el("li", { "data-kind": e.kind },
    el("time", { datetime: e.at || "", text: e.at ? fmtDateTime(Date.parse(e.at)) : "–" }),
    " ", el("strong", { text: wordsOr("timeline." + e.kind, e.kind) }),
    e.site ? t("return.at_site", { site: e.site }) : "", e.lpn ? t("return.of_unit", { lpn: e.lpn }) : "",
    e.detail ? el("span", { class: "muted" }, " — ", detailText(e)) : null)));
  const open = r.status === "expected";
  document.getElementById("cancel").disabled = r.status === "cancelled";
  document.getElementById("cancel-question").textContent = open
    ? t("return.cancel_question_rma", { rma: r.rma })
    : t("return.cancel_question_late", { rma: r.rma, status: wordsOr("status." + r.status, r.status) });
}

/** A trade-in's quote, and its offer and answer once graded. */
function showTradeIn(ti) {
  document.getElementById("trade-in-label").hidden = !ti;
  document.getElementById("trade-in").hidden = !ti;
  if (!ti) return;
  const parts = [t("return.trade_in_quote", { quote: ti.quote_id, yen: fmtYen(ti.quote_yen),
    grade: ti.expected_grade,
    payout: ti.payout === "store_credit" ? t("return.trade_in_payout_store_credit") : t("return.trade_in_payout_bank_transfer") })];
  if (ti.offer_yen !== null && ti.offer_yen !== undefined) {
    parts.push(t(ti.counter_offer ? "return.trade_in_counter" : "return.trade_in_offer", { yen: fmtYen(ti.offer_yen) }));
  }
  if (ti.decision) parts.push(ti.decision === "accepted" ? t("return.trade_in_accepted") : t("return.trade_in_declined"));
  if (ti.payout_yen !== null && ti.payout_yen !== undefined) {
    parts.push(t("return.trade_in_owed", { yen: fmtYen(ti.payout_yen) }));
  }
  text("trade-in", parts.join(" "));
  // Ops may override an offer made and not yet decided (`/api/v1/returns/{rma}/trade-in/override`).
  document.getElementById("override-form").hidden = !(ti.offer_yen !== null && ti.offer_yen !== undefined && !ti.decision);
}

/** A repair's fault, and its quote (or the defects waiting for a price) once graded. */
function showRepair(rp) {
  document.getElementById("repair-label").hidden = !rp;
  document.getElementById("repair").hidden = !rp;
  if (!rp) return;
  const parts = [t("return.repair_fault", { fault: wordsOr("fault." + rp.fault, rp.fault), text: rp.fault_text || "–" })];
  const defects = (list) => list.map((d) => wordsOr("defect." + d, d)).join(", ");
  if (rp.unpriced.length) parts.push(t("return.repair_unpriced", { defects: defects(rp.unpriced) }));
  if (rp.quote_yen !== null && rp.quote_yen !== undefined) {
    parts.push(t("return.repair_quoted", { yen: fmtYen(rp.quote_yen), defects: rp.defects.length ? defects(rp.defects) : "–" }));
  }
  if (rp.decision === "accepted") {
    parts.push(t("return.repair_accepted", { yen: fmtYen(rp.charge_yen) }));
    if (rp.transfer_to) parts.push(t("return.repair_transfer", { site: rp.transfer_to }));
  } else if (rp.decision === "declined") {
    parts.push(t("return.repair_declined"));
  }
  text("repair", parts.join(" "));
}

async function load() {
  try {
    show(await api("/ui/returns/" + encodeURIComponent(rma)));
    showCustomerWords(await api("/ui/returns/" + encodeURIComponent(rma) + "/customer"));
  } catch (e) {
    const p = document.getElementById("load-error");
    p.textContent = t("return.unreadable", { why: e.message });
    p.hidden = false;
  }
}

/** Each line's note and photos from the customer portal, when there are any. */
function showCustomerWords(c) {
  document.getElementById("customer-panel").hidden = !c.lines.length;
  fill("customer-words", c.lines.map((l) => el("div", { class: "customer-line" },
    el("h3", { text: l.sku }),
    l.note ? el("p", { class: "customer-note", text: l.note }) : null,
    l.photos.map((src, i) => el("a", { href: src },
      el("img", { class: "customer-photo", src, width: 160, alt: "Photo " + (i + 1) + " of " + l.sku }))))));
}

/** A unit's transfer to another site: the site chosen, then confirmed. */
function transferControl(u, sites) {
  const others = sites.filter((s) => s !== u.site);
  if (!others.length || u.transfer_to) return el("span", { class: "muted", text: u.transfer_to ? t("return.in_transfer") : "–" });
  const to = el("select", { class: "transfer-to", "aria-label": t("return.transfer_label", { lpn: u.lpn }) },
    others.map((s) => el("option", { value: s, text: s })));
  const cell = el("span", { class: "transfer" }, to, " ");
  cell.append(el("button", { type: "button", class: "transfer-go", onclick: () => {
    actionError("");
    const box = el("div", { class: "confirm" },
      el("p", { text: t("return.transfer_question", { lpn: u.lpn, from: u.site, to: to.value }) }),
      el("button", { type: "button", class: "primary transfer-confirm", onclick: () => doTransfer(u.lpn, to.value) }, t("return.transfer_confirm")),
      " ",
      el("button", { type: "button", class: "transfer-keep", onclick: () => box.remove() }, t("return.transfer_keep")));
    cell.append(box);
    box.querySelector(".transfer-keep").focus();
  } }, t("return.transfer")));
  return cell;
}

async function doTransfer(lpn, to) {
  const res = await fetch("/ui/units/" + encodeURIComponent(lpn) + "/transfer", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify({ to }),
  });
  if (res.ok) {
    document.getElementById("action-result").textContent = t("return.transferred", { lpn, to });
  } else {
    actionError(t("return.not_transferred", { why: await errorText(res) }));
  }
  load();
}

function actionError(message) {
  const p = document.getElementById("action-error");
  p.textContent = message || "";
  p.hidden = !message;
}

document.getElementById("override-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  actionError("");
  const offer_yen = Number(document.getElementById("override-yen").value);
  const reason = document.getElementById("override-reason").value;
  const res = await fetch("/ui/returns/" + encodeURIComponent(rma) + "/trade-in/override", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify({ offer_yen, reason }),
  });
  if (res.ok) {
    document.getElementById("action-result").textContent = t("return.overridden", { rma, yen: fmtYen(offer_yen) });
  } else {
    actionError(t("return.not_overridden", { why: await errorText(res) }));
  }
  load();
});
document.getElementById("cancel").addEventListener("click", () => {
  actionError("");
  document.getElementById("cancel-confirm-box").hidden = false;
  document.getElementById("cancel-keep").focus();
});
document.getElementById("cancel-keep").addEventListener("click", () => {
  document.getElementById("cancel-confirm-box").hidden = true;
  document.getElementById("cancel").focus();
});
document.getElementById("cancel-confirm").addEventListener("click", async () => {
  document.getElementById("cancel-confirm-box").hidden = true;
  const res = await fetch("/ui/returns/" + encodeURIComponent(rma) + "/cancel", {
    method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf },
  });
  if (res.ok) {
    document.getElementById("action-result").textContent = t("return.cancelled", { rma });
  } else {
    actionError(t("return.not_cancelled", { why: await errorText(res) }));
  }
  load();
});
load();
