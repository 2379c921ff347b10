// The returns list: the filters live in the address (so a list can be bookmarked, reloaded
// and shared), each search reads a page of /ui/returns with them, and the export link asks
// /ui/returns.csv with the same ones. The coordinator checks the query; what it refuses is
// shown in its own words, naming the field.
"use strict";

const FILTERS = ["q", "status", "site", "store", "merchant", "from", "to", "per_page", "sort"];

/** The query of the address, as the filters show it. */
function currentQuery() {
  return new URLSearchParams(location.search);
}

/** The filled filters of the form, and `page`, as a query (empty ones left out). */
function formQuery(page) {
  const q = new URLSearchParams();
  for (const name of FILTERS) {
    const input = document.querySelector("#filters [name=\"" + name + "\"]");
    if (input && input.value) q.set(name, input.value);
  }
  if (page && page > 1) q.set("page", String(page));
  return q;
}

/** Sets each filter of the form from the address, adding an option the list does not have
 * so a value that is not valid is shown, not silently dropped. */
function showQuery(q) {
  for (const name of FILTERS) {
    const input = document.querySelector("#filters [name=\"" + name + "\"]");
    if (!input) continue;
    const v = q.get(name) || (name === "sort" ? "-created" : name === "per_page" ? "50" : "");
    if (input.tagName === "SELECT" && v && ![...input.options].some((o) => o.value === v)) {
      input.append(el("option", { value: v, text: v }));
    }
    input.value = v;
  }
}

/** Fills a select's options after "any", keeping its value. */
function fillChoices(id, values) {
  const select = document.getElementById(id);
  const keep = select.value;
  const known = new Set([...select.options].map((o) => o.value));
  for (const v of values) if (!known.has(v)) select.append(el("option", { value: v, text: v }));
  select.value = keep;
}

function showError(text) {
  const p = document.getElementById("returns-error");
  p.textContent = text || "";
  p.hidden = !text;
}

function row(r) {
  const customer = [r.customer_name, r.customer_ref].filter(Boolean).join(" · ");
  return el("tr", { "data-rma": r.rma, "data-status": r.status },
    el("td", {}, el("a", { href: "/returns/" + encodeURIComponent(r.rma), text: r.rma })),
    el("td", { text: ["expected", "receiving", "received", "cancelled", "expired"].includes(r.status) ? t("status." + r.status) : r.status }),
    el("td", { text: r.site }),
    el("td", { text: r.store || "–" }),
    el("td", { text: r.merchant || "–" }),
    el("td", { text: r.order_ref || "–" }),
    el("td", { text: customer || "–" }),
    el("td", { text: r.tracking || "–" }),
    el("td", { class: "num", text: fmtYen(r.value_yen) }),
    el("td", { text: fmtDateTime(Date.parse(r.created_at)) }));
}

/** Marks the sorted column for eyes and screen readers. */
function showSort(sort) {
  const descending = sort.startsWith("-");
  const key = descending ? sort.slice(1) : sort;
  for (const b of document.querySelectorAll("button.sort")) {
    const th = b.closest("th");
    th.setAttribute("aria-sort", b.dataset.sort === key ? (descending ? "descending" : "ascending") : "none");
  }
}

let lastPage = 1;
let lastPages = 1;

/** Reads and shows the page the address asks for. */
async function load() {
  const q = currentQuery();
  showQuery(q);
  showSort(q.get("sort") || "-created");
  const exportQuery = new URLSearchParams(q);
  exportQuery.delete("page");
  document.getElementById("export").href = "/ui/returns.csv?" + exportQuery.toString();
  let res;
  try {
    res = await fetch("/ui/returns?" + q.toString(), { credentials: "same-origin" });
  } catch (_) {
    showError(t("returns.unreachable"));
    return;
  }
  if (res.status === 401) {
    location.href = "/login?next=" + encodeURIComponent("/returns");
    return;
  }
  if (!res.ok) {
    fill("return-rows");
    document.getElementById("returns-total").textContent = "–";
    showError(t("returns.not_searched", { why: await errorText(res) }));
    return;
  }
  const list = await res.json();
  showError("");
  setTimeZone(list.time_zone);
  fillChoices("f-site", list.choices.sites);
  fillChoices("f-store", list.choices.stores);
  fill("merchants", list.choices.merchants.map((m) => el("option", { value: m })));
  showQuery(q);
  lastPage = list.page;
  lastPages = Math.max(1, Math.ceil(list.total / list.per_page));
  document.getElementById("returns-total").textContent = fmtInt(list.total);
  document.getElementById("returns-total").dataset.total = String(list.total);
  fill("return-rows", list.returns.length
    ? list.returns.map(row)
    : el("tr", {}, el("td", { colspan: 10, class: "muted", text: t("returns.none") })));
  document.getElementById("page-at").textContent = t("returns.page_at", { page: lastPage, pages: lastPages });
  document.getElementById("page-prev").disabled = lastPage <= 1;
  document.getElementById("page-next").disabled = lastPage >= lastPages;
}

/** Puts `q` in the address and shows its page. */
function go(q) {
  history.pushState(null, "", "/returns" + (q.toString() ? "?" + q.toString() : ""));
  load();
}

document.getElementById("filters").addEventListener("submit", (e) => {
  e.preventDefault();
  go(formQuery(1));
});
for (const b of document.querySelectorAll("button.sort")) {
  b.addEventListener("click", () => {
    const current = currentQuery().get("sort") || "-created";
    const key = b.dataset.sort;
    document.getElementById("f-sort").value = current === key ? "-" + key : key;
    go(formQuery(1));
  });
}
document.getElementById("page-prev").addEventListener("click", () => go(formQuery(lastPage - 1)));
document.getElementById("page-next").addEventListener("click", () => go(formQuery(lastPage + 1)));
window.addEventListener("popstate", load);
load();
