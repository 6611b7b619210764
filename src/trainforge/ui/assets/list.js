// The jobs list: filter, search, sort and page through ListTrainingJobs (NextToken pages, so
// 10,000 jobs page as fast as 10), refreshed while jobs run.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const state = {
    status: params.get("status") || "", q: params.get("q") || "",
    sort: params.get("sort") || "CreationTime", order: params.get("order") || "Descending",
    size: params.get("size") || "25", tokens: [""], page: 0, next: null, live: false,
  };
  const selected = new Set();
  $("status").value = state.status; $("search").value = state.q; $("size").value = state.size;
  tf.header();

  const url = () => {
    const p = new URLSearchParams({ sort: state.sort, order: state.order, size: state.size });
    if (state.status) p.set("status", state.status);
    if (state.q) p.set("q", state.q);
    if (state.tokens[state.page]) p.set("token", state.tokens[state.page]);
    return "/ui/api/jobs?" + p;
  };
  const render = (data) => {
    const body = $("jobs").tBodies[0];
    const rows = data.jobs.map((j) => tf.el("tr", { "data-name": j.name, "data-status": j.status },
      tf.el("td", {}, tf.el("input", { type: "checkbox", "aria-label": "select " + j.name, checked: selected.has(j.name),
        onchange: (e) => { e.target.checked ? selected.add(j.name) : selected.delete(j.name); $("compare").disabled = selected.size < 2; } })),
      tf.el("td", {}, tf.el("a", { href: "/ui/jobs/" + encodeURIComponent(j.name) }, j.name)),
      tf.el("td", {}, tf.status(j.status)),
      tf.el("td", { class: "hide-narrow" }, j.secondary),
      tf.el("td", { class: "hide-narrow" }, `${j.instanceType} × ${j.instanceCount}`),
      tf.el("td", {}, tf.time(j.created)),
      tf.el("td", { class: "num" }, tf.dur(j.duration))));
    if (!rows.length) rows.push(tf.el("tr", {}, tf.el("td", { colspan: 7, class: "muted" }, "No training jobs match.")));
    body.replaceChildren(...rows);
    state.next = data.next || null;
    state.live = data.jobs.some((j) => tf.running(j.status));
    $("next").disabled = !state.next; $("prev").disabled = $("first").disabled = state.page === 0;
    $("pageno").textContent = "Page " + (state.page + 1);
    $("live").textContent = state.live ? "live: refreshing while jobs run" : "";
    $("jobs").setAttribute("data-loaded", "1");
    if (!performance.getEntriesByName("tf-data").length) performance.mark("tf-data");
  };
  let seq = 0;
  const load = async () => { const mine = ++seq; const data = await tf.get(url()); if (mine === seq) render(data); };
  const reset = () => {
    state.tokens = [""]; state.page = 0;
    const p = new URLSearchParams();
    for (const k of ["status", "q", "sort", "order", "size"]) if (state[k]) p.set(k, state[k]);
    history.replaceState(null, "", "?" + p);
    load();
  };
  $("status").addEventListener("change", (e) => { state.status = e.target.value; reset(); });
  $("size").addEventListener("change", (e) => { state.size = e.target.value; reset(); });
  let typing;
  $("search").addEventListener("input", (e) => { clearTimeout(typing); typing = setTimeout(() => { state.q = e.target.value.trim(); reset(); }, 250); });
  $("filters").addEventListener("submit", (e) => e.preventDefault());
  for (const b of document.querySelectorAll("th button[data-sort]")) {
    b.addEventListener("click", () => {
      const key = b.dataset.sort;
      state.order = state.sort === key && state.order === "Descending" ? "Ascending" : "Descending";
      state.sort = key; reset();
    });
  }
  $("next").addEventListener("click", () => { if (!state.next) return; state.tokens[state.page + 1] = state.next; state.page++; load(); });
  $("prev").addEventListener("click", () => { if (state.page) { state.page--; load(); } });
  $("first").addEventListener("click", () => { state.page = 0; load(); });
  $("compare").addEventListener("click", () => { location.href = "/ui/compare?jobs=" + [...selected].map(encodeURIComponent).join(","); });
  // The first page came inside the HTML (one round trip fewer); later ones are fetched.
  const first = document.getElementById("tf-first");
  let skip = false;
  if (first) { render(JSON.parse(first.textContent)); first.remove(); skip = true; }
  // 2 s while a shown job runs, 10 s otherwise (new jobs appear): a few ms of server time each.
  tf.poll(() => { if (skip) { skip = false; return Promise.resolve(); } return load(); }, () => state.live ? 2000 : 10000);
})();
