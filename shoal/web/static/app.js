// The Shoal web view: one EventSource (/api/events) keeps a copy of the swarm's rows; every
// view is drawn from that copy, again on each change (at most once per animation frame).
"use strict";

const S = { nodes: new Map(), services: new Map(), tasks: new Map(), revision: 0, ready: false, message: "" };
const $ = (id) => document.getElementById(id);
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
let logs = null; // the open task page's log EventSource
let pending = false;

function connect() {
  const es = new EventSource("/api/events");
  es.addEventListener("snapshot", (e) => {
    const d = JSON.parse(e.data);
    for (const kind of ["nodes", "services", "tasks"]) {
      S[kind] = new Map(d[kind].map((r) => [r.id, r]));
    }
    S.revision = d.revision; S.ready = true; S.message = "";
    link(true); draw();
  });
  es.addEventListener("delta", (e) => {
    const d = JSON.parse(e.data);
    for (const kind of ["nodes", "services", "tasks"]) {
      for (const id of d.drop[kind]) S[kind].delete(id);
      for (const r of d.put[kind]) S[kind].set(r.id, r);
    }
    S.revision = d.revision; schedule();
  });
  es.addEventListener("unavailable", (e) => {
    S.ready = false; S.message = JSON.parse(e.data).message; link(false); draw();
  });
  es.onerror = () => link(false); // the browser reconnects; the next snapshot replaces all
}

function link(up) {
  const el = $("link");
  el.textContent = up ? "live" : "reconnecting";
  el.className = up ? "link" : "link down";
}

function schedule() {
  if (!pending) { pending = true; requestAnimationFrame(() => { pending = false; draw(); }); }
}

const byName = (a, b) => a.localeCompare(b, undefined, { numeric: true });
const nodeName = (n) => n ? (n.name || n.hostname || n.id.slice(0, 12)) : "";
const svcName = (t) => (S.services.get(t.service) || {}).name || t.service.slice(0, 10);
const taskLabel = (t) => svcName(t) + (t.slot ? "." + t.slot : "." + (nodeName(S.nodes.get(t.node)) || t.id.slice(0, 6)));
const live = (t) => t.desired === "running" || t.desired === "ready" || t.desired === "new";

function draw() {
  const route = location.hash.replace(/^#\/?/, "");
  const [view, arg] = route.split("/");
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("on", a.dataset.view === (view || "grid"));
  const banner = $("banner");
  banner.hidden = !S.message; banner.textContent = S.message;
  $("summary").textContent = S.ready ? `${S.nodes.size} nodes · ${S.services.size} services · ${S.tasks.size} tasks` : "";
  if (view !== "task" && logs) { logs.close(); logs = null; }
  const main = $("main");
  if (view === "task") { drawTask(main, arg); return; }
  if (!S.ready) { main.innerHTML = `<p class="muted">${esc(S.message || "Loading…")}</p>`; return; }
  main.innerHTML = view === "services" ? services() : view === "nodes" ? nodes() : grid();
  document.body.dataset.revision = S.revision;
  if (!window.shoalFirstRender) window.shoalFirstRender = performance.now();
}

function chip(t) {
  const title = `${taskLabel(t)}: ${t.state}${t.health ? " (" + t.health + ")" : ""}${t.message ? " — " + t.message : ""}`;
  return `<a class="task t-${esc(t.state)} h-${esc(t.health || "none")}" href="#/task/${esc(t.id)}" data-task="${esc(t.id)}"` +
    ` data-service="${esc(svcName(t))}" data-slot="${t.slot}" data-state="${esc(t.state)}" title="${esc(title)}">${esc(taskLabel(t))}</a>`;
}

function grid() {
  const onNode = new Map();
  for (const t of S.tasks.values()) {
    const key = S.nodes.has(t.node) ? t.node : "";
    if (!onNode.has(key)) onNode.set(key, []);
    onNode.get(key).push(t);
  }
  const sorted = [...S.nodes.values()].sort((a, b) => (a.role === b.role ? byName(nodeName(a), nodeName(b)) : a.role === "manager" ? -1 : 1));
  const cards = sorted.map((n) => card(n, onNode.get(n.id) || []));
  if (onNode.has("")) cards.push(card(null, onNode.get("")));
  const legend = ["running", "starting", "pending", "failed", "complete", "shutdown"].map((st) => `<span class="task t-${st}">${st}</span>`).join(" ") +
    ` <span class="task t-running h-healthy">healthy</span> <span class="task t-running h-unhealthy">unhealthy</span>`;
  return `<p class="legend">${legend}</p><div class="grid">${cards.join("")}</div>`;
}

function card(n, tasks) {
  tasks.sort((a, b) => byName(taskLabel(a), taskLabel(b)));
  const chips = tasks.map(chip).join("") || `<span class="muted">no tasks</span>`;
  if (!n) return `<section class="node n-unassigned" data-node=""><h3>not on a node</h3><div class="tasks">${chips}</div></section>`;
  const badges = [`<span class="badge">${esc(n.role)}</span>`];
  if (n.leader) badges.push(`<span class="badge leader">leader</span>`);
  if (n.availability !== "active") badges.push(`<span class="badge">${esc(n.availability)}</span>`);
  if (n.state !== "ready") badges.push(`<span class="badge">${esc(n.state)}</span>`);
  return `<section class="node n-${esc(n.state)} a-${esc(n.availability)}" data-node="${esc(nodeName(n))}" data-node-id="${esc(n.id)}">` +
    `<h3>${esc(nodeName(n))} ${badges.join(" ")} <small>${tasks.length}</small></h3><div class="tasks">${chips}</div></section>`;
}

function services() {
  const rows = [...S.services.values()].sort((a, b) => byName(a.name, b.name)).map((s) => {
    const tasks = [...S.tasks.values()].filter((t) => t.service === s.id && live(t));
    const running = tasks.filter((t) => t.state === "running").length;
    const desired = s.replicas ?? tasks.length;
    let update = "";
    if (s.update) {
      const fresh = tasks.filter((t) => t.fresh && t.state === "running").length;
      update = `${esc(s.update.state)} ${fresh}/${desired} updated${s.update.message ? " — " + esc(s.update.message) : ""}`;
    }
    const ports = s.ports.map((p) => `${p.published}→${p.target}/${esc(p.protocol)}${p.mode === "host" ? " (host)" : ""}`).join(", ");
    const cls = running < desired ? "warn" : "";
    return `<tr data-service="${esc(s.name)}"><td>${esc(s.name)}</td><td>${esc(s.mode)}</td>` +
      `<td class="replicas ${cls}">${running}/${desired}</td><td>${esc(s.image)}</td><td>${update}</td>` +
      `<td>${ports}</td><td>${esc(s.networks.join(", "))}</td></tr>`;
  });
  return `<table><thead><tr><th>Service</th><th>Mode</th><th>Replicas</th><th>Image</th><th>Update</th>` +
    `<th>Ports</th><th>Networks</th></tr></thead><tbody>${rows.join("") || '<tr><td colspan="7" class="muted">no services</td></tr>'}</tbody></table>`;
}

function expiry(text) {
  if (!text) return ["", "unknown"];
  const days = (Date.parse(text) - Date.now()) / 86400e3;
  const cls = days < 1 ? "bad" : days < 7 ? "warn" : "";
  const when = days < 0 ? "expired" : days < 2 ? `in ${Math.round(days * 24)} h` : `in ${Math.round(days)} days`;
  return [cls, `${text.replace("T", " ").replace("Z", " UTC")} (${when})`];
}

function nodes() {
  const count = new Map();
  for (const t of S.tasks.values()) if (live(t)) count.set(t.node, (count.get(t.node) || 0) + 1);
  const rows = [...S.nodes.values()].sort((a, b) => byName(nodeName(a), nodeName(b))).map((n) => {
    const ms = n.role === "manager" ? (n.leader ? "Leader" : n.reachability ? n.reachability[0].toUpperCase() + n.reachability.slice(1) : "") : "";
    const [cls, exp] = expiry(n.cert_expiry);
    return `<tr data-node="${esc(nodeName(n))}"><td>${esc(nodeName(n))}</td><td>${esc(n.id.slice(0, 12))}</td><td>${esc(n.role)}</td>` +
      `<td>${esc(n.availability)}</td><td class="${n.state === "ready" ? "" : "bad"}">${esc(n.state)}</td><td class="${ms === "Unreachable" ? "bad" : ""}">${esc(ms)}</td>` +
      `<td>${esc(n.addr)}</td><td>${esc(n.engine)}</td><td>${count.get(n.id) || 0}</td><td class="cert ${cls}">${esc(exp)}</td></tr>`;
  });
  return `<table><thead><tr><th>Hostname</th><th>ID</th><th>Role</th><th>Availability</th><th>State</th><th>Manager status</th>` +
    `<th>Address</th><th>Engine</th><th>Tasks</th><th>Certificate expiry</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

function drawTask(main, id) {
  if (main.dataset.task !== id) { // a new task page: its details once, its logs followed
    main.dataset.task = id;
    main.innerHTML = `<h2 id="task-title">task ${esc(id)}</h2><dl id="task-info"></dl><h3>Logs</h3><pre class="logs" id="logs"></pre>`;
    fetch(`/api/tasks/${encodeURIComponent(id)}`).then((r) => r.json()).then((d) => info(d));
    if (logs) logs.close();
    logs = new EventSource(`/api/tasks/${encodeURIComponent(id)}/logs`);
    const out = $("logs");
    const add = (text, cls) => { const s = document.createElement("span"); if (cls) s.className = cls; s.textContent = text + "\n"; out.append(s); out.scrollTop = out.scrollHeight; };
    logs.addEventListener("lines", (e) => { for (const [ns, stream, text] of JSON.parse(e.data)) add(`${new Date(ns / 1e6).toISOString()} ${text}`, stream === 2 ? "err" : ""); });
    for (const kind of ["error", "end"]) {
      logs.addEventListener(kind, (e) => { add(`— ${JSON.parse(e.data).message}`, "note"); logs.close(); logs = null; });
    }
    return;
  }
  const t = S.tasks.get(id);
  if (t) { const st = $("task-state"); if (st) st.textContent = `${t.state} (desired ${t.desired})`; }
}

function info(d) {
  if (d.message && !d.id) { $("task-info").innerHTML = `<dt>error</dt><dd>${esc(d.message)}</dd>`; return; }
  $("task-title").textContent = `${d.service_name}.${d.slot || d.node_hostname} (${d.id.slice(0, 12)})`;
  const rows = [["state", `<span id="task-state">${esc(d.state)} (desired ${esc(d.desired)})</span>`], ["health", esc(d.health || "none")],
    ["node", esc(d.node_hostname || d.node)], ["image", esc(d.image)], ["command", esc([...d.command, ...d.args].join(" "))],
    ["message", esc(d.status_message)], ["error", esc(d.err)], ["container", esc(d.container_id)],
    ["exit code", esc(d.exit_code ?? "")], ["addresses", esc(d.addresses.join(", "))], ["created", esc(d.created_at)], ["updated", esc(d.updated_at)]];
  $("task-info").innerHTML = rows.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join("");
}

window.addEventListener("hashchange", () => { delete $("main").dataset.task; draw(); });
connect();
