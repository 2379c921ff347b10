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
    el("a", { href: path, target: "_blank", rel: "noopener", class: "label-link", text: "Print label" }),
    " · ",
    el("a", { href: path + "/zpl", class: "zpl-link", text: "ZPL" }),
    " · ",
    el("a", { href: "/ui/store/receipts/" + encodeURIComponent(rma), target: "_blank", rel: "noopener", class: "receipt-link", text: "Customer's receipt" }),
  ];
}

/** Where a return stands, in the clerk's words. */
function whereItIs(status) {
  return {
    expected: "On its way to the warehouse",
    receiving: "At the warehouse",
    received: "At the warehouse",
    cancelled: "Cancelled",
    expired: "Expired (never sent)",
  }[status] || "At the warehouse";
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
    : el("tr", {}, el("td", { colspan: 7, class: "muted", text: "No return taken here today." })));
}

function lineRow(order, line, i) {
  const id = `o-${order.order_ref}-${i}`;
  const unavailable = line.returnable === 0 || line.final_sale || line.price_yen === null;
  const why = line.final_sale ? "final sale" : line.price_yen === null ? "not in the catalogue" : line.returnable === 0 ? "already returned" : "";
  const qty = el("input", { type: "number", class: "qty", min: 1, max: Math.max(1, line.returnable), value: 1, "data-sku": line.sku, disabled: unavailable, "aria-label": "quantity" });
  const reason = el("select", { class: "reason", "data-sku": line.sku, disabled: unavailable, "aria-label": "reason" },
    el("option", { value: "", text: "Reason…" }),
    reasons.map((r) => el("option", { value: r, text: r.replace(/_/g, " ") })));
  return el("div", { class: "line" + (unavailable ? " unavailable" : ""), "data-sku": line.sku },
    el("input", { type: "checkbox", class: "pick", id, "data-sku": line.sku, disabled: unavailable }),
    el("label", { for: id },
      el("strong", { text: line.sku }),
      el("span", { class: "muted", text: ` ${line.category || ""} · ${fmtYen(line.price_yen)} · ordered ${line.ordered}, returnable ${line.returnable}` + (why ? ` (${why})` : "") })),
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
      throw new Error(`Quantity of ${row.dataset.sku}: a whole number from 1 to ${max}.`);
    }
    field.removeAttribute("aria-invalid");
    lines.push({ sku: row.dataset.sku, qty, reason: row.querySelector(".reason").value });
  }
  return lines;
}

function request(order, box, dryRun) {
  const lines = picked(box);
  if (!lines.length) throw new Error("Tick at least one item coming back.");
  const missing = lines.find((l) => !l.reason);
  if (missing) throw new Error(`Choose a reason for ${missing.sku}.`);
  const resolution = box.querySelector("input.resolution:checked").value;
  const body = { merchant: order.merchant, order_ref: order.order_ref, lines, resolution, dry_run: dryRun };
  const condition = conditionOf(box);
  if (condition) body.condition = condition;
  if (resolution === "exchange") {
    body.exchange_sku = box.querySelector(".exchange-sku").value.trim();
    if (!body.exchange_sku) throw new Error("Choose the SKU the customer takes instead.");
  }
  return body;
}

// A styled SKU is exchanged only for a sellable variant of its style: those are offered in a
// list. An order with no styled line keeps the free-text box (any catalogue SKU).
function exchangePicker(order) {
  const styled = order.lines.filter((l) => l.variants && l.variants.length);
  if (!styled.length) {
    return el("input", { class: "exchange-sku", placeholder: "exchange for SKU", maxlength: 64, autocomplete: "off" });
  }
  return el("select", { class: "exchange-sku", "aria-label": "exchange for" },
    el("option", { value: "", text: "Exchange for…" }),
    styled.map((l) => l.variants.map((v) =>
      el("option", { value: v, "data-for": l.sku, text: `${v} (variant of ${l.sku})` }))));
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
    el("legend", { text: "3 · Condition seen at the counter" }),
    el("label", { for: id("checked") }, checked, "I checked the items"),
    box("tags_on", "Tags still on"), box("opened", "Opened"), box("visibly_used", "Visibly used"),
    box("damaged", "Damaged"), box("photo", "Photo taken"),
    el("label", { for: id("photo-ref"), class: "photo-ref-label" }, "Photo number", photoRef));
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
      throw new Error("Type the photo's number from the counter's camera, or untick \"Photo taken\".");
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
    return `Too many of ${sku}: ${message}. Look the order up again to see what is left.`;
  }
  if (sku && /\.sku$/.test(field)) return `${sku} is not on this order any more. Look the order up again.`;
  if (sku && /\.reason$/.test(field)) return `Choose a reason for ${sku}.`;
  if (sku) return `${sku} cannot be returned: ${policy}.`;
  if (field === "order_ref") return `This order cannot be returned: ${policy}.`;
  if (field === "exchange_sku") return `The item to exchange for: ${message}.`;
  if (field === "condition.photo_ref") return "The photo number is not valid: type it as the camera shows it.";
  return `The return was not registered: ${message}. Ask central ops if it happens again.`;
}

/** Posts a counter return; a refusal becomes an Error in the clerk's words. */
async function postCounter(body) {
  const res = await fetch("/ui/store/returns", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  if (res.status === 401) {
    location.href = "/login?next=" + encodeURIComponent(location.pathname);
    throw new Error("The session ended: log in again.");
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
  const quote = el("button", { type: "button", class: "quote", text: "Check terms" });
  const go = el("button", { type: "button", class: "primary register", text: "Register return" });
  quote.addEventListener("click", async () => {
    try {
      const r = await postCounter(request(order, box, true));
      const p = r.policy;
      msg.className = "order-msg";
      msg.textContent = `Accepted on ${p.terms} terms: value ${fmtYen(p.value_yen)}, fee ${fmtYen(p.fee_yen)}` +
        (p.store_credit_bonus_yen ? `, store credit bonus ${fmtYen(p.store_credit_bonus_yen)}` : "") + ".";
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
      msg.textContent = `Registered as ${r.rma}.`;
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
    el("h3", {}, el("span", { text: `Order ${order.order_ref}` }),
      el("span", { class: "muted", text: `${order.merchant} · customer ${order.customer_ref || "–"} · ordered ${order.ordered_at ? order.ordered_at.slice(0, 10) : "?"} · window to ${order.window_ends_at ? order.window_ends_at.slice(0, 10) : "?"}` })),
    el("p", { class: "muted", text: "2 · Tick what comes back, how many, and why:" }),
    order.lines.map((l, i) => lineRow(order, l, i)),
    conditionBox(order),
    el("div", { class: "choices" },
      choice("refund", "Refund", true), choice("store_credit", "Store credit (bonus)", false),
      choice("exchange", "Exchange", false), exchangeSku),
    el("div", { class: "actions" }, quote, go),
    msg].flat());
  return box;
}

function showResult(r) {
  document.getElementById("result-panel").hidden = false;
  fill("result",
    el("p", {}, "Return ", el("span", { class: "big", id: "result-rma", text: r.rma })),
    el("p", {}, "Goes to ", el("strong", { id: "result-site", "data-site": r.site, text: r.site_name || r.site }), el("span", { class: "muted", text: ` (${r.site})` })),
    el("p", { class: "why", text: "Why: " + r.explanation }),
    el("p", { text: `Fee ${fmtYen(r.policy.fee_yen)}` + (r.policy.store_credit_bonus_yen ? ` · store credit bonus ${fmtYen(r.policy.store_credit_bonus_yen)}` : "") +
      (r.exchange_ordered === true ? " · exchange ordered from the site" : r.exchange_ordered === false ? " · exchange could not be ordered: tell central ops" : "") }),
    el("p", { class: "actions" }, labelLinks(r.rma)));
  document.getElementById("result-panel").scrollIntoView({ behavior: "smooth", block: "start" });
}

async function lookup(q) {
  const msg = document.getElementById("lookup-msg");
  q = (q || "").trim();
  if (!q) return;
  msg.className = "muted";
  msg.textContent = "Looking up…";
  try {
    const found = await api("/ui/store/orders?q=" + encodeURIComponent(q));
    msg.textContent = found.length ? `${found.length} order(s) found.` : "No order found with this number.";
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
