// Line charts in SVG, drawn here: one chart, several series (hosts or jobs), time on x.
"use strict";
tf.colors = ["#1f6feb", "#cf222e", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#0a7f8f", "#6e7781"];
tf.chart = (title, series, relative) => {
  const NS = "http://www.w3.org/2000/svg";
  const W = 600, H = 200, L = 48, R = 8, T = 8, B = 22;
  const s = (tag, attrs) => { const n = document.createElementNS(NS, tag); for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v); return n; };
  const all = series.flatMap((x) => x.t.map((t, i) => [relative ? t - x.t0 : t, x.v[i]]));
  const box = tf.el("div", { class: "card chart", "data-metric": title });
  box.append(tf.el("h2", {}, title));
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title + " chart", "data-points": all.length });
  if (!all.length) { box.append(tf.el("p", { class: "muted" }, "No points yet.")); return box; }
  box.append(svg);
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  for (const [x, y] of all) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) { y1 += Math.abs(y1) * 0.05 || 1; y0 -= Math.abs(y0) * 0.05 || 1; }
  const px = (x) => L + (x - x0) / (x1 - x0) * (W - L - R);
  const py = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  svg.append(s("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }), s("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }));
  const label = (x, y, text, anchor) => { const n = s("text", { x, y, "text-anchor": anchor }); n.textContent = text; svg.append(n); };
  const num = (v) => Math.abs(v) >= 1000 || (Math.abs(v) < 0.01 && v !== 0) ? v.toExponential(2) : (+v.toPrecision(4)).toString();
  label(L - 4, T + 8, num(y1), "end"); label(L - 4, H - B, num(y0), "end");
  const xl = (x) => relative ? tf.dur(x) : new Date(x * 1000).toLocaleTimeString();
  label(L, H - 6, xl(x0), "start"); label(W - R, H - 6, xl(x1), "end");
  const legend = tf.el("div", { class: "legend" });
  series.forEach((x, k) => {
    const color = tf.colors[k % tf.colors.length];
    const pts = x.t.map((t, i) => [px(relative ? t - x.t0 : t), py(x.v[i])]);
    if (!pts.length) return;
    svg.append(s("path", { d: "M" + pts.map((p) => p[0].toFixed(1) + " " + p[1].toFixed(1)).join("L"), fill: "none", stroke: color, "stroke-width": 1.6 }));
    if (pts.length <= 120) for (const [a, b] of pts) svg.append(s("circle", { cx: a.toFixed(1), cy: b.toFixed(1), r: 2.2, fill: color }));
    legend.append(tf.el("span", {}, tf.el("i", { style: null }), x.label + " (last " + num(x.v[x.v.length - 1]) + ")"));
    legend.lastChild.firstChild.style.background = color;
  });
  box.append(legend);
  return box;
};
