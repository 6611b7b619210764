// Two or more jobs side by side: hyperparameters (rows that differ highlighted) and their
// algorithm metrics overlaid, each job's curve from its own start.
"use strict";
(async () => {
  const $ = (id) => document.getElementById(id);
  tf.header();
  const names = (new URLSearchParams(location.search).get("jobs") || "").split(",").filter(Boolean).slice(0, 8);
  $("which").textContent = names.join(" · ");
  const jobs = await Promise.all(names.map((n) => tf.get("/ui/api/jobs/" + encodeURIComponent(n))));
  const metrics = await Promise.all(names.map((n) => tf.get("/ui/api/jobs/" + encodeURIComponent(n) + "/metrics")));
  const table = $("params");
  table.tHead.replaceChildren(tf.el("tr", {}, tf.el("th", {}, "Hyperparameter"),
    ...names.map((n) => tf.el("th", {}, tf.el("a", { href: "/ui/jobs/" + encodeURIComponent(n) }, n)))));
  const keys = [...new Set(jobs.flatMap((j) => Object.keys(j.describe.HyperParameters || {})))].sort();
  const extra = [["Status", (j) => j.describe.TrainingJobStatus], ["Instances", (j) => `${j.describe.ResourceConfig.InstanceType} × ${j.describe.ResourceConfig.InstanceCount}`],
    ["Image", (j) => (j.describe.AlgorithmSpecification || {}).TrainingImage || ""]];
  const rows = [...extra, ...keys.map((k) => [k, (j) => (j.describe.HyperParameters || {})[k]])].map(([k, get]) => {
    const values = jobs.map((j) => get(j));
    const differ = new Set(values.map((v) => v === undefined ? "\u0000" : v)).size > 1;
    return tf.el("tr", { class: differ ? "diff" : null }, tf.el("th", {}, k), ...values.map((v) => tf.el("td", {}, v === undefined ? "—" : v)));
  });
  table.tBodies[0].replaceChildren(...rows);
  const byName = new Map();
  metrics.forEach((m, i) => {
    const t0 = jobs[i].describe.TrainingStartTime || jobs[i].describe.CreationTime;
    for (const s of m.series) {
      if (s.host) continue;
      if (!byName.has(s.name)) byName.set(s.name, []);
      byName.get(s.name).push({ label: names[i], t: s.t, v: s.v, t0 });
    }
  });
  const charts = [...byName].map(([m, series]) => tf.chart(m, series, true));
  $("charts").replaceChildren(...(charts.length ? charts : [tf.el("p", { class: "muted" }, "These jobs have no algorithm metrics.")]));
})().catch((e) => { if (e.message !== "login") document.querySelector("main").append(tf.el("p", { class: "error" }, e.message)); });
