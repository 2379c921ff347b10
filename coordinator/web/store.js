// The store counter: find the customer's order, pick the lines coming back with their
// reasons, choose refund / store credit / exchange, register, print the label. The session
// cookie (a store key's) authenticates every call; the store is the session's.
"use strict";

/** How often the waiting list is read again. */
const WAITING_REFRESH_MS = 10000;

let reasons = [];

function labelLinks(rma) {
  const path = "/ui/store/labels/" + encodeURIComponent(rma);
  return [
    el("a", { href: path, target: "_blank", rel: "noopener", class: "label-link", text: t("counter.print_label") }),
    " · ",
    el("a", { href: path + "/zpl", class: "zpl-link", text: t("counter.zpl") }),
    " · ",
    el("a", { href: "/ui/store/receipts/" + encodeURIComponent(rma), target: "_blank", rel: "noopener", class: "receipt-link", text: t("counter.receipt") }),
  ];
}

/** Where a return stands, in the clerk's words. */
function whereItIs(status) {
  return ["expected", "receiving", "received", "cancelled", "expired"].includes(status)
    ? t("status." + status) : t("status.received");
}

async function loadState() {
  const s = await api("/ui/store/state");
  setTimeZone(s.time_zone);
  reasons = s.reasons;
  const name = document.getElementById("store-name");
  name.textContent = `${s.store.name} (${s.store.id})`;
  name.dataset.store = s.store.id;
  fill("recent", s.recent.length
    ? s.recent.map((r) => el("tr", { "data-rma": r.rma, "data-status": r.status },
      el("td", {}, el("strong", { text: r.rma })),
      el("td", { text: r.site }),
      el("td", { class: "where", text: whereItIs(r.status) }),
      el("td", { text: r.order_ref || "–" }),
      el("td", { text: (r.lines || []).map((l) => `${l.qty}× ${l.sku}`).join(", ") }),
      el("td", { text: fmtTime(r.created_ms) }),
      el("td", {}, labelLinks(r.rma))))
    : el("tr", {}, el("td", { colspan: 7, class: "muted", text: t("counter.list_empty") })));
}

function lineRow(order, line, i) {
  const id = `o-${order.order_ref}-${i}`;
  const unavailable = line.returnable === 0 || line.final_sale || line.price_yen === null;
  const why = line.final_sale ? t("counter.final_sale") : line.price_yen === null ? t("counter.not_in_catalogue") : line.returnable === 0 ? t("counter.already_returned") : "";
  const qty = el("input", { type: "number", class: "qty", min: 1, max: Math.max(1, line.returnable), value: 1, "data-sku": line.sku, disabled: unavailable, "aria-label": t("counter.quantity") });
  const reason = el("select", { class: "reason", "data-sku": line.sku, disabled: unavailable, "aria-label": t("counter.reason") },
    el("option", { value: "", text: t("counter.reason_choose") }),
    reasons.map((r) => el("option", { value: r, text: t("reason." + r) })));
  return el("div", { class: "line" + (unavailable ? " unavailable" : ""), "data-sku": line.sku },
    el("input", { type: "checkbox", class: "pick", id, "data-sku": line.sku, disabled: unavailable }),
    el("label", { for: id },
      el("strong", { text: line.sku }),
      el("span", { class: "muted", text: " " + t("counter.line_facts", { category: line.category_name || line.category || "–", price: fmtYen(line.price_yen), ordered: line.ordered, returnable: line.returnable }) + (why ? ` (${why})` : "") })),
    qty, reason);
}

function picked(box) {
  const lines = [];
  for (const row of box.querySelectorAll(".line")) {
    const pick = row.querySelector(".pick");
    if (!pick.checked) continue;
    // A quantity that is not a whole number from 1 to what may be returned is an error at its
    // field, never silently 1.
    const field = row.querySelector(".qty");
    const qty = Number(field.value);
    const max = Number(field.max);
    if (!Number.isInteger(qty) || qty < 1 || qty > max) {
      field.setAttribute("aria-invalid", "true");
      field.focus();
      throw new Error(t("error.quantity", { sku: row.dataset.sku, max }));
    }
    field.removeAttribute("aria-invalid");
    lines.push({ sku: row.dataset.sku, qty, reason: row.querySelector(".reason").value });
  }
  return lines;
}

function request(order, box, dryRun) {
  const lines = picked(box);
  if (!lines.length) throw new Error(t("error.pick_one"));
  const missing = lines.find((l) => !l.reason);
  if (missing) throw new Error(t("error.reason", { sku: missing.sku }));
  const resolution = box.querySelector("input.resolution:checked").value;
  const body = { merchant: order.merchant, order_ref: order.order_ref, lines, resolution, dry_run: dryRun };
  const condition = conditionOf(box);
  if (condition) body.condition = condition;
  if (resolution === "exchange") {
    body.exchange_sku = box.querySelector(".exchange-sku").value.trim();
    if (!body.exchange_sku) throw new Error(t("error.exchange_sku"));
  }
  return body;
}

// A styled SKU is exchanged only for a sellable variant of its style: those are offered in a
// list. An order with no styled line keeps the free-text box (any catalogue SKU).
function exchangePicker(order) {
  const styled = order.lines.filter((l) => l.variants && l.variants.length);
  if (!styled.length) {
    return el("input", { class: "exchange-sku", placeholder: t("counter.exchange_sku_placeholder"), "aria-label": t("counter.exchange_sku_placeholder"), maxlength: 64, autocomplete: "off" });
  }
  return el("select", { class: "exchange-sku", "aria-label": t("counter.exchange_for") },
    el("option", { value: "", text: t("counter.exchange_for") }),
    styled.map((l) => l.variants.map((v) =>
      el("option", { value: v, "data-for": l.sku, text: t("counter.variant_of", { variant: v, sku: l.sku }) }))));
}

// What the clerk saw of the goods, compared later with the warehouse's grading. Only sent
// once the clerk says the goods were checked: an unticked box then means "no", not "not
// looked at".
function conditionBox(order) {
  const id = (what) => `cond-${order.merchant}-${order.order_ref}-${what}`;
  const box = (what, text) => el("label", { for: id(what) },
    el("input", { type: "checkbox", class: "cond", id: id(what), "data-cond": what, disabled: true }), text);
  const checked = el("input", { type: "checkbox", class: "cond-checked", id: id("checked") });
  const photoRef = el("input", { class: "photo-ref", id: id("photo-ref"), maxlength: 200, autocomplete: "off", disabled: true });
  const set = el("fieldset", { class: "condition" },
    el("legend", { text: t("counter.step_condition") }),
    el("label", { for: id("checked") }, checked, t("counter.checked")),
    ["tags_on", "opened", "visibly_used", "damaged", "photo"].map((what) => box(what, t("counter." + what))),
    el("label", { for: id("photo-ref"), class: "photo-ref-label" }, t("counter.photo_ref"), photoRef));
  const sync = () => {
    for (const c of set.querySelectorAll("input.cond")) c.disabled = !checked.checked;
    photoRef.disabled = !checked.checked || !set.querySelector('input.cond[data-cond="photo"]').checked;
  };
  set.addEventListener("change", sync);
  return set;
}

function conditionOf(box) {
  const set = box.querySelector("fieldset.condition");
  if (!set || !set.querySelector(".cond-checked").checked) return null;
  const on = (what) => set.querySelector(`input.cond[data-cond="${what}"]`).checked;
  const condition = { tags_on: on("tags_on"), opened: on("opened"), visibly_used: on("visibly_used"), damaged: on("damaged") };
  if (on("photo")) {
    const field = set.querySelector(".photo-ref");
    const ref = field.value.trim();
    if (!ref) {
      field.setAttribute("aria-invalid", "true");
      field.focus();
      throw new Error(t("error.photo_number"));
    }
    field.removeAttribute("aria-invalid");
    condition.photo_ref = ref;
  }
  return condition;
}

/** The item a refusal's field (`lines[2].qty`) names, from the request sent. */
function lineOf(body, field) {
  const m = /^lines\[(\d+)\]/.exec(field || "");
  return m && body.lines[Number(m[1])] ? body.lines[Number(m[1])].sku : null;
}

/** The server's refusal of a counter return, said as a clerk would understand it. */
function clerkWords(body, field, message) {
  const sku = lineOf(body, field);
  const policy = (message || "").replace(/^the return policy refuses( this line)?:\s*/, "");
  if (sku && /\.qty$/.test(field)) {
    const left = /only (\d+)/.exec(message || "");
    return t("error.too_many", { sku, left: left ? left[1] : "?" });
  }
  if (sku && /\.sku$/.test(field)) return t("error.not_on_order", { sku });
  if (sku && /\.reason$/.test(field)) return t("error.reason", { sku });
  if (sku) return t("error.line_refused", { sku, why: policy });
  if (field === "order_ref") return t("error.order_refused", { why: policy });
  if (field === "exchange_sku") return t("error.exchange_refused", { message });
  if (field === "condition.photo_ref") return t("error.photo_invalid");
  return t("error.other", { message });
}

/** Posts a counter return; a refusal becomes an Error in the clerk's words. */
async function postCounter(body) {
  const res = await fetch("/ui/store/returns", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  if (res.status === 401) {
    location.href = "/login?next=" + encodeURIComponent(location.pathname);
    throw new Error(t("common.session_ended"));
  }
  if (res.ok) return res.json();
  let e = {};
  try {
    e = (await res.json()).error || {};
  } catch (_) {
    // Not our JSON: said generally below.
  }
  const err = new Error(clerkWords(body, e.field, e.message || res.statusText));
  err.field = e.field || null;
  throw err;
}

function orderCard(order) {
  const box = el("div", { class: "order", "data-order": order.order_ref, "data-merchant": order.merchant });
  const msg = el("p", { class: "muted order-msg" });
  const name = `res-${order.merchant}-${order.order_ref}`;
  const choice = (value, text, checked) => el("label", {},
    el("input", { type: "radio", class: "resolution", name, value, checked }), text);
  const exchangeSku = exchangePicker(order);
  const quote = el("button", { type: "button", class: "quote", text: t("counter.check_terms") });
  const go = el("button", { type: "button", class: "primary register", text: t("counter.register") });
  quote.addEventListener("click", async () => {
    try {
      const r = await postCounter(request(order, box, true));
      const p = r.policy;
      msg.className = "order-msg";
      const words = { terms: t("terms." + p.terms), value: fmtYen(p.value_yen), fee: fmtYen(p.fee_yen), bonus: fmtYen(p.store_credit_bonus_yen) };
      msg.textContent = t(p.store_credit_bonus_yen ? "counter.accepted_bonus" : "counter.accepted", words);
    } catch (e) {
      msg.className = "error order-msg";
      msg.textContent = e.message;
    }
  });
  go.addEventListener("click", async () => {
    go.disabled = true;
    try {
      const r = await postCounter(request(order, box, false));
      showResult(r);
      msg.className = "muted order-msg";
      msg.textContent = t("counter.registered", { rma: r.rma });
      await loadState();
      await lookup(document.getElementById("lookup-q").value);
    } catch (e) {
      msg.className = "error order-msg";
      msg.textContent = e.message;
    } finally {
      go.disabled = false;
    }
  });
  box.append(...[
    el("h3", {}, el("span", { text: t("counter.order", { order: order.order_ref }) }),
      el("span", { class: "muted", text: t("counter.order_facts", { merchant: order.merchant, customer: order.customer_ref || "–",
        ordered: order.ordered_at ? order.ordered_at.slice(0, 10) : "?", window: order.window_ends_at ? order.window_ends_at.slice(0, 10) : "?" }) })),
    el("p", { class: "muted", text: t("counter.step_pick") }),
    order.lines.map((l, i) => lineRow(order, l, i)),
    conditionBox(order),
    el("div", { class: "choices" },
      choice("refund", t("counter.refund"), true), choice("store_credit", t("counter.store_credit"), false),
      choice("exchange", t("counter.exchange"), false), exchangeSku),
    el("div", { class: "actions" }, quote, go),
    msg].flat());
  return box;
}

function showResult(r) {
  document.getElementById("result-panel").hidden = false;
  fill("result",
    el("p", {}, t("counter.result_return") + " ", el("span", { class: "big", id: "result-rma", text: r.rma })),
    el("p", {}, t("counter.result_goes_to") + " ", el("strong", { id: "result-site", "data-site": r.site, text: r.site_name || r.site }), el("span", { class: "muted", text: ` (${r.site})` })),
    el("p", { class: "why", text: t("counter.result_why", { why: r.explanation }) }),
    el("p", { text: t("counter.result_fee", { fee: fmtYen(r.policy.fee_yen) }) +
      (r.policy.store_credit_bonus_yen ? " · " + t("counter.result_bonus", { bonus: fmtYen(r.policy.store_credit_bonus_yen) }) : "") +
      (r.exchange_ordered === true ? " · " + t("counter.exchange_ordered") : r.exchange_ordered === false ? " · " + t("counter.exchange_not_ordered") : "") }),
    el("p", { class: "actions" }, labelLinks(r.rma)));
  document.getElementById("result-panel").scrollIntoView({ behavior: "smooth", block: "start" });
}

async function lookup(q) {
  const msg = document.getElementById("lookup-msg");
  q = (q || "").trim();
  if (!q) return;
  msg.className = "muted";
  msg.textContent = t("counter.looking_up");
  try {
    const found = await api("/ui/store/orders?q=" + encodeURIComponent(q));
    msg.textContent = found.length ? t("counter.found", { n: found.length }) : t("counter.not_found");
    fill("orders", found.map(orderCard));
  } catch (e) {
    msg.className = "error";
    msg.textContent = e.message;
  }
}

document.getElementById("lookup-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  lookup(document.getElementById("lookup-q").value);
});

loadState().catch((e) => {
  document.getElementById("lookup-msg").textContent = e.message;
});
setInterval(() => loadState().catch(() => {}), WAITING_REFRESH_MS);
