// One job: its request summarised, its status timeline, its failure, its metrics and a live
// tail of its logs across hosts; Stop (confirmed) and run again.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const name = decodeURIComponent(location.pathname.split("/").pop());
  const api = "/ui/api/jobs/" + encodeURIComponent(name);
  let job = null, cursor = "", lines = [], hosts = new Set();
  const MAX_LINES = 20000;
  tf.header();
  document.title = name + " · trainforge";
  $("title").textContent = name;

  const pair = (dl, k, v) => { if (v === undefined || v === null || v === "") return; dl.append(tf.el("dt", {}, k), tf.el("dd", {}, v)); };
  const kv = (o) => Object.entries(o || {}).map(([k, v]) => `${k}=${v}`).join("  ");
  const renderJob = (d) => {
    const j = d.describe; job = d;
    $("status").replaceChildren(tf.status(j.TrainingJobStatus));
    $("secondary").textContent = " " + (j.SecondaryStatus || "") + (j.StatusMessage ? "" : "");
    $("stop").hidden = !d.stoppable;
    const failure = $("failure");
    failure.hidden = !j.FailureReason;
    failure.textContent = j.FailureReason ? "Failure reason: " + j.FailureReason : "";
    const a = j.AlgorithmSpecification || {}, r = j.ResourceConfig || {}, s = j.StoppingCondition || {};
    const dl = $("summary"); dl.replaceChildren();
    pair(dl, "Image", a.TrainingImage || a.AlgorithmName);
    pair(dl, "Entrypoint", (a.ContainerEntrypoint || []).join(" "));
    pair(dl, "Arguments", (a.ContainerArguments || []).join(" "));
    pair(dl, "Hyperparameters", kv(j.HyperParameters) || "none");
    pair(dl, "Channels", (j.InputDataConfig || []).map((c) => `${c.ChannelName}: ${((c.DataSource || {}).S3DataSource || {}).S3Uri || ((c.DataSource || {}).FileSystemDataSource || {}).DirectoryPath || ""}`).join("  ") || "none");
    pair(dl, "Instances", `${r.InstanceType} × ${r.InstanceCount}`);
    pair(dl, "Output path", (j.OutputDataConfig || {}).S3OutputPath);
    pair(dl, "Stopping condition", `MaxRuntimeInSeconds=${s.MaxRuntimeInSeconds}` + (s.MaxWaitTimeInSeconds ? ` MaxWaitTimeInSeconds=${s.MaxWaitTimeInSeconds}` : ""));
    pair(dl, "Created", tf.time(j.CreationTime));
    pair(dl, "Duration", tf.dur(d.duration));
    const landed = ["Completed", "Stopped"].includes(j.TrainingJobStatus) && (j.ModelArtifacts || {}).S3ModelArtifacts;
    pair(dl, "Model", landed ? j.ModelArtifacts.S3ModelArtifacts : (j.TrainingJobStatus === "Failed" ? "none (the job failed)" : "not yet"));
    const last = j.FinalMetricDataList || [];
    pair(dl, "Final metrics", last.map((m) => `${m.MetricName}=${m.Value}`).join("  "));
    $("timeline").tBodies[0].replaceChildren(...d.timeline.map((t) => tf.el("tr", {},
      tf.el("td", {}, t.status), tf.el("td", {}, tf.time(t.start)), tf.el("td", { class: "num" }, tf.dur(t.seconds) + (t.end ? "" : " …")), tf.el("td", {}, t.message))));
    $("request").textContent = JSON.stringify(d.request, null, 2);
  };
  const loadJob = async () => renderJob(await tf.get(api));

  // -- logs --
  const shown = (l) => (!$("host").value || l.host === $("host").value) && (!$("logsearch").value || l.m.toLowerCase().includes($("logsearch").value.toLowerCase()));
  const lineNode = (l) => tf.el("div", { class: "line" }, tf.el("span", { class: "t" }, new Date(l.t).toLocaleTimeString()), tf.el("span", { class: "h" }, l.host), l.m);
  const redraw = () => {
    const box = $("log"), pick = lines.filter(shown);
    box.replaceChildren(...pick.slice(-5000).map(lineNode));
    $("logcount").textContent = `${pick.length} of ${lines.length} lines`;
    if ($("follow").checked) box.scrollTop = box.scrollHeight;
  };
  const loadLogs = async () => {
    let more = true;
    for (let i = 0; more && i < 10; i++) {
      const d = await tf.get(api + "/logs?cursor=" + encodeURIComponent(cursor));
      cursor = d.cursor; more = d.more;
      if (d.earlier) $("logearlier").hidden = false;
      if (!d.lines.length) break;
      const box = $("log"), atEnd = $("follow").checked;
      for (const l of d.lines) {
        lines.push(l);
        if (!hosts.has(l.host)) { hosts.add(l.host); $("host").append(tf.el("option", { value: l.host }, l.host)); }
        if (shown(l)) box.append(lineNode(l));
      }
      if (lines.length > MAX_LINES) { lines = lines.slice(-MAX_LINES); redraw(); }
      $("logcount").textContent = `${lines.filter(shown).length} of ${lines.length} lines`;
      if (atEnd) box.scrollTop = box.scrollHeight;
    }
  };
  $("host").addEventListener("change", redraw);
  $("logsearch").addEventListener("input", redraw);
  $("follow").addEventListener("change", redraw);

  // -- metrics --
  const loadMetrics = async () => {
    const d = await tf.get(api + "/metrics");
    const byName = new Map();
    for (const s of d.series) {
      if (!byName.has(s.name)) byName.set(s.name, []);
      byName.get(s.name).push({ label: s.host || name, t: s.t, v: s.v });
    }
    const charts = [...byName].map(([m, series]) => tf.chart(m, series, false));
    $("charts").replaceChildren(...(charts.length ? charts : [tf.el("p", { class: "muted" }, "This job has no metrics yet.")]));
  };

  // -- actions --
  const notice = (t) => { $("notice").textContent = t; };
  $("stop").addEventListener("click", async () => {
    if (!confirm(`Stop the training job ${name}? Its containers get SIGTERM, then its model is saved as it is.`)) return;
    $("stop").disabled = true;
    try { renderJob(await tf.post(api + "/stop")); notice("Stop requested."); } catch (e) { notice(e.message); } finally { $("stop").disabled = false; }
  });
  $("copy").addEventListener("click", async () => {
    const text = JSON.stringify(job ? job.request : {}, null, 2);
    try { await navigator.clipboard.writeText(text); notice("Copied."); } catch (e) { notice("Select the request below and copy it."); }
  });
  $("again").addEventListener("click", () => {
    const req = Object.assign({}, job ? job.request : {});
    req.TrainingJobName = (name.replace(/-again-\d+$/, "") + "-again-" + Math.floor(Date.now() / 1000)).slice(-63).replace(/^-+/, "");
    $("rerunjson").value = JSON.stringify(req, null, 2);
    $("rerunerror").textContent = "";
    $("rerun").showModal();
  });
  $("reruncancel").addEventListener("click", () => $("rerun").close());
  $("rerunform").addEventListener("submit", async (e) => {
    e.preventDefault();
    let req;
    try { req = JSON.parse($("rerunjson").value); } catch (err) { $("rerunerror").textContent = "Not JSON: " + err.message; return; }
    try { await tf.post("/ui/api/jobs", req); location.href = "/ui/jobs/" + encodeURIComponent(req.TrainingJobName); }
    catch (err) { $("rerunerror").textContent = err.message; }
  });

  const live = () => !job || tf.running(job.describe.TrainingJobStatus);
  let tick = 0, ended = 0;
  // While the job runs: the job and its new log lines every 2 s, the charts every 6 s; once it
  // has ended, a last round of each, then a slow check every 30 s.
  tf.poll(async () => {
    const was = live();
    await loadJob();
    await loadLogs();
    if ((was && tick++ % 3 === 0) || (!live() && ended++ === 0)) await loadMetrics();
  }, () => live() ? 2000 : 30000);
})();
