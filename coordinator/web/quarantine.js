// The quarantine screen: units waiting to be matched with the returns they may belong to.
// A match asks for a confirmation, then posts with the session's CSRF token; a refusal (the
// unit matched meanwhile, a return that does not exist) is shown in the coordinator's words.
"use strict";

let csrf = "";

function showError(message) {
  const p = document.getElementById("match-error");
  p.textContent = message || "";
  p.hidden = !message;
}

/** The confirmation of matching `lpn` to `rma`, in place of its button. */
function confirmMatch(cell, lpn, rma) {
  const box = el("div", { class: "confirm" },
    el("p", { text: "Match " + lpn + " to " + rma + "? Its site is told." }),
    el("button", { type: "button", class: "primary match-confirm", onclick: () => doMatch(lpn, rma) }, "Yes, match"),
    " ",
    el("button", { type: "button", class: "match-keep", onclick: () => { box.remove(); } }, "No"));
  cell.append(box);
  box.querySelector(".match-keep").focus();
}

async function doMatch(lpn, rma) {
  showError("");
  const res = await fetch("/ui/quarantine/" + encodeURIComponent(lpn) + "/match", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify({ rma }),
  });
  if (res.ok) {
    document.getElementById("match-result").textContent = lpn + " is matched to " + rma + ".";
  } else {
    showError("Not matched: " + (await errorText(res)));
  }
  load();
}

function suggestionList(u) {
  if (!u.suggestions.length) return el("span", { class: "muted", text: "No open return fits." });
  return el("ul", { class: "suggestions" }, u.suggestions.map((s) => {
    const item = el("li", { "data-rma": s.rma },
      el("a", { href: "/returns/" + encodeURIComponent(s.rma), text: s.rma }),
      " ", el("span", { class: "muted", text: [s.by_reference ? "reference fits" : "same SKU and site",
        s.order_ref, s.customer_name, s.status].filter(Boolean).join(" · ") }),
      " ");
    item.append(el("button", { type: "button", class: "match", "data-rma": s.rma,
      "aria-label": "Match " + u.lpn + " to " + s.rma,
      onclick: () => confirmMatch(item, u.lpn, s.rma) }, "Match…"));
    return item;
  }));
}

async function load() {
  let w;
  try {
    w = await api("/ui/quarantine");
  } catch (e) {
    showError("The waiting units could not be read: " + e.message);
    return;
  }
  csrf = w.csrf;
  setTimeZone(w.time_zone);
  document.getElementById("waiting-count").textContent = fmtInt(w.units.length);
  fill("unit-rows", w.units.length
    ? w.units.map((u) => el("tr", { "data-lpn": u.lpn },
      el("td", { text: u.lpn }), el("td", { text: u.site }), el("td", { text: u.sku }),
      el("td", { text: u.parcel_ref || u.claimed_rma || "–" }),
      el("td", { text: fmtDateTime(Date.parse(u.since)) }),
      el("td", {}, suggestionList(u))))
    : el("tr", {}, el("td", { colspan: 6, class: "muted", text: "No unit is waiting." })));
}
load();
