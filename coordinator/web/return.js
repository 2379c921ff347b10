// One return for ops: what it is, where it went and why, its units and what was decided for
// each, its timeline in the page's time zone, and the actions ops may take. Each action asks
// for a confirmation first and posts with the session's CSRF token; a refusal is shown in the
// coordinator's words.
"use strict";

/** The timeline's kinds of event, in words. */
const EVENT_WORDS = {
  registered: "Registered",
  carrier_event: "Carrier update",
  unit_received: "Unit received at the site",
  unit_matched: "Unit matched to this return",
  unit_tested: "Unit tested",
  unit_graded: "Unit graded",
  disposition_set: "Decision made for a unit",
  disposition_undone: "Decision undone",
  put_away: "Unit put away",
  unit_departed: "Unit left the site",
  receipt_voided: "Receipt voided",
  parcel_closed: "Parcel closed",
  exchange_shipped: "Exchange shipped",
  refund_computed: "Refund computed",
  refunded: "Refunded",
  cancelled: "Cancelled",
  expired: "Expired",
};

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
  text("status", r.status);
  document.getElementById("status").dataset.status = r.status;
  text("site", r.site);
  text("merchant", r.merchant);
  text("origin", r.origin);
  text("routing", r.routing);
  fill("line-rows", r.lines.map((l) => el("tr", {},
    el("td", { text: l.sku }), el("td", { class: "num", text: l.qty }), el("td", { text: l.reason || "–" }))));
  fill("unit-rows", r.units.length
    ? r.units.map((u) => el("tr", { "data-lpn": u.lpn },
      el("td", { text: u.lpn }), el("td", { text: u.sku }),
      el("td", { text: u.site + (u.transfer_to ? " → " + u.transfer_to : "") }),
      el("td", { text: u.state }), el("td", { text: u.grade || "–" }),
      el("td", { text: u.decided || "–" }), el("td", { text: u.decision_why || "–" }),
      el("td", {}, transferControl(u, r.sites))))
    : el("tr", {}, el("td", { colspan: 8, class: "muted", text: "Nothing of it has arrived yet." })));
  fill("timeline", r.events.map((e) => el("li", { "data-kind": e.kind },
    el("time", { datetime: e.at || "", text: e.at ? fmtDateTime(Date.parse(e.at)) : "–" }),
    " ", el("strong", { text: EVENT_WORDS[e.kind] || e.kind }),
    e.site ? " at " + e.site : "", e.lpn ? " (unit " + e.lpn + ")" : "",
    e.detail ? el("span", { class: "muted", text: " — " + e.detail }) : null)));
  const open = r.status === "expected";
  document.getElementById("cancel").disabled = r.status === "cancelled";
  document.getElementById("cancel-question").textContent =
    "Cancel " + r.rma + "? Its site stops expecting it. This cannot be undone." +
    (open ? "" : " (It is " + r.status + ": the coordinator will refuse if something of it has arrived.)");
}

async function load() {
  try {
    show(await api("/ui/returns/" + encodeURIComponent(rma)));
    showCustomerWords(await api("/ui/returns/" + encodeURIComponent(rma) + "/customer"));
  } catch (e) {
    const p = document.getElementById("load-error");
    p.textContent = "This return could not be shown: " + e.message;
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
  if (!others.length || u.transfer_to) return el("span", { class: "muted", text: u.transfer_to ? "in transfer" : "–" });
  const to = el("select", { class: "transfer-to", "aria-label": "Transfer " + u.lpn + " to" },
    others.map((s) => el("option", { value: s, text: s })));
  const cell = el("span", { class: "transfer" }, to, " ");
  cell.append(el("button", { type: "button", class: "transfer-go", onclick: () => {
    actionError("");
    const box = el("div", { class: "confirm" },
      el("p", { text: `Transfer ${u.lpn} from ${u.site} to ${to.value}? ${u.site} packs it at its putaway station.` }),
      el("button", { type: "button", class: "primary transfer-confirm", onclick: () => doTransfer(u.lpn, to.value) }, "Yes, transfer it"),
      " ",
      el("button", { type: "button", class: "transfer-keep", onclick: () => box.remove() }, "No"));
    cell.append(box);
    box.querySelector(".transfer-keep").focus();
  } }, "Transfer…"));
  return cell;
}

async function doTransfer(lpn, to) {
  const res = await fetch("/ui/units/" + encodeURIComponent(lpn) + "/transfer", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify({ to }),
  });
  if (res.ok) {
    document.getElementById("action-result").textContent = `${lpn} is to be transferred to ${to}.`;
  } else {
    actionError("Not transferred: " + (await errorText(res)));
  }
  load();
}

function actionError(message) {
  const p = document.getElementById("action-error");
  p.textContent = message || "";
  p.hidden = !message;
}

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
    document.getElementById("action-result").textContent = rma + " is cancelled.";
  } else {
    actionError("Not cancelled: " + (await errorText(res)));
  }
  load();
});
load();
