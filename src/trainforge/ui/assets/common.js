// Shared by every page: fetching (JSON, 401 → login), making elements (text only: nothing from a
// job is ever parsed as HTML), formatting, and polling that pauses while the tab is hidden.
"use strict";
const tf = {};
tf.csrf = null;
tf.get = async (url) => {
  const r = await fetch(url, { credentials: "same-origin", headers: { accept: "application/json" } });
  if (r.status === 401) { location.href = "/ui/login?next=" + encodeURIComponent(location.pathname + location.search); throw new Error("login"); }
  const body = await r.json();
  if (!r.ok) throw new Error(body.message || r.statusText);
  return body;
};
tf.session = async () => {
  if (!tf.csrf) { const s = await tf.get("/ui/api/session"); tf.csrf = s.csrf; tf.user = s.user; tf.login = s.login; }
  return tf.csrf;
};
tf.post = async (url, payload) => {
  const csrf = await tf.session();
  const r = await fetch(url, { method: "POST", credentials: "same-origin",
    headers: { "content-type": "application/json", "x-csrf-token": csrf }, body: JSON.stringify(payload || {}) });
  const body = await r.json();
  if (!r.ok) throw new Error((body.error ? body.error + ": " : "") + (body.message || r.statusText));
  return body;
};
// el("td", {class: "x"}, "text", child...): strings become text nodes, never markup.
tf.el = (tag, attrs, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v); else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  return node;
};
tf.status = (s) => tf.el("span", { class: "status " + s }, s);
tf.time = (t) => t ? new Date(t * 1000).toLocaleString() : "—";
tf.dur = (s) => {
  if (s === null || s === undefined) return "—";
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60), x = s % 60;
  return h ? `${h}h ${m}m ${x}s` : m ? `${m}m ${x}s` : `${x}s`;
};
tf.running = (s) => s === "InProgress" || s === "Stopping";
// Calls fn now and then every `every()` ms (a function, so a page can slow down once nothing
// runs); skips while the tab is hidden; never overlaps itself.
tf.poll = (fn, every) => {
  let busy = false;
  const tick = async () => {
    if (!document.hidden && !busy) {
      busy = true;
      try { await fn(); } catch (e) { if (e.message !== "login") console.warn(e); } finally { busy = false; }
    }
    setTimeout(tick, every());
  };
  tick();
};
tf.header = () => {
  const logout = tf.el("form", { method: "post", action: "/ui/logout" }, tf.el("button", { type: "submit" }, "Log out"));
  const bar = tf.el("header", {}, tf.el("a", { href: "/ui/" }, "trainforge"), tf.el("a", { href: "/ui/" }, "Jobs"),
    tf.el("span", { class: "grow" }), logout);
  document.body.prepend(bar);
  tf.session().then(() => { if (!tf.login) logout.remove(); }).catch(() => {});
};
