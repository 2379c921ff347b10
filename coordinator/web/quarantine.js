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
    el("p", { text: t("quarantine.confirm", { lpn, rma }) }),
    el("button", { type: "button", class: "primary match-confirm", onclick: () => doMatch(lpn, rma) }, t("quarantine.yes")),
    " ",
    el("button", { type: "button", class: "match-keep", onclick: () => { box.remove(); } }, t("quarantine.no")));
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
    document.getElementById("match-result").textContent = t("quarantine.matched", { lpn, rma });
  } else {
    showError(t("quarantine.not_matched", { why: await errorText(res) }));
  }
  load();
}

function suggestionList(u) {
  if (!u.suggestions.length) return el("span", { class: "muted", text: t("quarantine.none_fits") });
  return el("ul", { class: "suggestions" }, u.suggestions.map((s) => {
    const item = el("li", { "data-rma": s.rma },
      el("a", { href: "/returns/" + encodeURIComponent(s.rma), text: s.rma }),
      " ", el("span", { class: "muted", text: [s.by_reference ? t("quarantine.reference_fits") : t("quarantine.same_sku"),
        s.order_ref, s.customer_name, s.status ? t("status." + s.status) : null].filter(Boolean).join(" · ") }),
      " ");
    item.append(el("button", { type: "button", class: "match", "data-rma": s.rma,
      "aria-label": t("quarantine.match_label", { lpn: u.lpn, rma: s.rma }),
      onclick: () => confirmMatch(item, u.lpn, s.rma) }, t("quarantine.match")));
    return item;
  }));
}

async function load() {
  let w;
  try {
    w = await api("/ui/quarantine");
  } catch (e) {
    showError(t("quarantine.unreadable", { why: e.message }));
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
    : el("tr", {}, el("td", { colspan: 6, class: "muted", text: t("quarantine.empty") })));
}
load();
