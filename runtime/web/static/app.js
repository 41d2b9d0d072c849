// FlowStone's page: hash routes over the JSON API of runtime/web. Plain
// DOM, no framework; dagre (vendored) lays the asset graph out.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const state = { session: null, stream: null, flash: null };

// el builds an element: el("a", {href: "#"}, "text", child...). Text is
// always set as text, never parsed as HTML.
function el(tag, attrs, ...kids) {
  const svg = ["svg", "g", "rect", "path", "text", "polyline", "line", "title", "defs", "marker", "circle"].includes(tag);
  const e = svg ? document.createElementNS(SVG, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids.flat(Infinity)) {
    if (k === null || k === undefined || k === false) continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

function credentials() { return sessionStorage.getItem("flowstone-auth"); }

async function api(path) {
  const r = await fetch("api/" + path, { headers: { Accept: "application/json" } });
  const body = await r.json().catch(() => ({ error: r.statusText }));
  if (!r.ok) throw Object.assign(new Error(body.error || r.statusText), { status: r.status });
  return body;
}

// post writes: it carries the signed-in user's basic auth and the CSRF
// token; a 401 forgets the credentials and asks to sign in.
async function post(path, body) {
  const headers = { "Content-Type": "application/json", "X-CSRF-Token": state.session.csrf };
  const auth = credentials();
  if (auth) headers.Authorization = "Basic " + auth;
  const r = await fetch("api/" + path, { method: "POST", headers, body: JSON.stringify(body || {}) });
  const out = await r.json().catch(() => ({ error: r.statusText }));
  if (r.status === 401) { sessionStorage.removeItem("flowstone-auth"); renderWho(); }
  if (!r.ok) throw new Error(out.error || r.statusText);
  return out;
}

function renderWho() {
  const who = document.getElementById("who");
  who.replaceChildren();
  if (!state.session || !state.session.writable) {
    who.append("read-only (no users configured)");
    return;
  }
  const auth = credentials();
  if (auth) {
    who.append("signed in as ", el("b", { id: "user" }, atob(auth).split(":")[0]),
      el("button", { onclick: () => { sessionStorage.removeItem("flowstone-auth"); renderWho(); } }, "Sign out"));
    return;
  }
  const user = el("input", { name: "user", placeholder: "user", autocomplete: "username" });
  const pass = el("input", { name: "password", type: "password", placeholder: "password", autocomplete: "current-password" });
  who.append(el("form", { class: "signin", id: "signin", onsubmit: (ev) => {
    ev.preventDefault();
    sessionStorage.setItem("flowstone-auth", btoa(user.value + ":" + pass.value));
    renderWho();
  } }, user, pass, el("button", { type: "submit" }, "Sign in")));
}

function pill(status) { return el("span", { class: "pill st-" + (status || "none") }, status || "never"); }
function when(t) { return t ? new Date(t).toLocaleString() : ""; }
function dur(a, b) {
  if (!a) return "";
  const ms = (b ? new Date(b) : new Date()) - new Date(a);
  if (ms < 1000) return ms + " ms";
  if (ms < 60000) return (ms / 1000).toFixed(1) + " s";
  return Math.round(ms / 60000) + " min";
}
function assetLink(p, a, part) {
  return el("a", { href: "#/asset/" + encodeURIComponent(p) + "/" + encodeURIComponent(a) + (part ? "?partition=" + encodeURIComponent(part) : "") }, a);
}
function runLink(id) { return el("a", { href: "#/run/" + encodeURIComponent(id) }, id); }
function main() { return document.getElementById("main"); }
function show(...kids) { main().replaceChildren(...kids); }
function fail(err) {
  show(el("p", { class: "error" }, String(err.message || err)));
  if (err.status === 503) { // the database is unreachable for now: try again until it is back
    const hash = location.hash;
    setTimeout(() => { if (location.hash === hash) (state.session ? route : start)(); }, 3000);
  }
}

// ---- routes ----

function parseHash() {
  const h = location.hash.replace(/^#\/?/, "");
  const [path, query] = h.split("?");
  return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(query || "") };
}

async function route() {
  if (state.stream) { state.stream.close(); state.stream = null; }
  const { parts, query } = parseHash();
  const page = parts[0] || "graph";
  document.querySelectorAll("header nav a[data-nav]").forEach((a) => a.classList.toggle("active", a.dataset.nav === page || (page === "asset" && a.dataset.nav === "graph") || (page === "run" && a.dataset.nav === "runs")));
  try {
    switch (page) {
      case "graph": return await graphPage(query);
      case "asset": return await assetPage(parts[1], parts[2], query);
      case "runs": return await runsPage(query);
      case "run": return await runPage(parts[1]);
      case "gates": return await gatesPage();
      case "backfills": return await backfillsPage();
      case "schedules": return await schedulesPage();
      case "health": return await healthPage(query);
    }
    show(el("p", {}, "No such page."));
  } catch (err) { fail(err); }
}

// ---- asset graph ----

const NODE_W = 180, NODE_H = 50;

async function graphPage(query) {
  const pipelines = await api("graph");
  if (!pipelines.length) return show(el("p", {}, "No pipelines are bound."));
  const name = query.get("pipeline") || pipelines[0].name;
  const p = pipelines.find((x) => x.name === name) || pipelines[0];
  const search = el("input", { id: "search", type: "search", placeholder: "Search assets (name, group, kind, tag)", size: 34 });
  const tabs = el("span", { class: "tabs" }, pipelines.map((x) =>
    el("a", { href: "#/graph?pipeline=" + encodeURIComponent(x.name), class: x.name === p.name ? "active" : null }, x.name)));
  const count = el("span", { class: "muted", id: "count" }, p.assets.length + " assets");
  const svg = el("svg", { id: "graph", "data-pipeline": p.name });
  show(el("div", { class: "toolbar" }, pipelines.length > 1 ? tabs : el("b", {}, p.name), search, el("button", { id: "fit" }, "Fit"), count),
    svg, legend());
  drawGraph(svg, p, search);
}

function legend() {
  const line = (cls) => el("svg", { width: 30, height: 10 }, el("path", { class: "edge " + cls, d: "M0 5 H30" }));
  return el("div", { class: "legend" },
    el("span", {}, line("k-value"), " value"), el("span", {}, line("k-outcome"), " outcome (tolerates failure)"),
    el("span", {}, line("k-partitions"), " partitions"), el("span", {}, line("k-previous"), " previous partition"),
    el("span", {}, line("k-order"), " order only"),
    el("span", {}, pill("succeeded"), " ", pill("failed"), " ", pill("running"), " ", pill("waiting"), " newest materialization"),
    el("span", {}, "dashed border: stale"), el("span", {}, "red border: overdue (", el("a", { href: "#/health" }, "health"), ")"));
}

function drawGraph(svg, p, search) {
  // Groups are drawn as clusters up to a few hundred assets; dagre's
  // compound layout grows too slow past that, and the group joins the
  // asset's second line instead.
  const groups = new Set(p.assets.map((a) => a.group).filter(Boolean));
  const compound = groups.size > 0 && p.assets.length <= 200;
  const g = new dagre.graphlib.Graph({ compound });
  // Past a few hundred assets the quicker longest-path ranker keeps the
  // layout within a second or two.
  g.setGraph({ rankdir: "LR", nodesep: 18, ranksep: 60, marginx: 20, marginy: 20, ranker: p.assets.length > 200 ? "longest-path" : "network-simplex" });
  g.setDefaultEdgeLabel(() => ({}));
  if (compound) for (const grp of groups) g.setNode("group:" + grp, { label: grp, clusterLabelPos: "top" });
  for (const a of p.assets) {
    g.setNode(a.key, { width: NODE_W, height: NODE_H, asset: a });
    if (compound && a.group) g.setParent(a.key, "group:" + a.group);
  }
  for (const a of p.assets) for (const d of a.deps) if (g.hasNode(d.asset)) g.setEdge(d.asset, a.key, { kind: d.kind });
  const t0 = performance.now();
  dagre.layout(g);
  svg.dataset.layoutMs = Math.round(performance.now() - t0);

  const view = el("g", { id: "viewport" });
  if (compound) for (const grp of groups) {
    const c = g.node("group:" + grp);
    view.append(el("g", { class: "cluster" }, el("rect", { x: c.x - c.width / 2, y: c.y - c.height / 2, width: c.width, height: c.height }),
      el("text", { x: c.x - c.width / 2 + 8, y: c.y - c.height / 2 + 13 }, grp)));
  }
  for (const e of g.edges()) {
    const ed = g.edge(e);
    const d = ed.points.map((pt, i) => (i ? "L" : "M") + pt.x.toFixed(1) + " " + pt.y.toFixed(1)).join(" ");
    view.append(el("path", { class: "edge k-" + ed.kind, d, "marker-end": "url(#arrow)" }, el("title", {}, e.v + " → " + e.w + " (" + ed.kind + ")")));
  }
  const nodes = [];
  for (const a of p.assets) {
    const n = g.node(a.key);
    const x = n.x - NODE_W / 2, y = n.y - NODE_H / 2;
    const overdue = a.freshness && a.freshness.overdue;
    const cls = ["node", "s-" + (a.status || "none"), a.stale ? "stale" : "", overdue ? "overdue" : ""].join(" ");
    const ge = el("g", { class: cls, "data-asset": a.key, transform: `translate(${x},${y})`, onclick: () => { location.hash = "#/asset/" + encodeURIComponent(p.name) + "/" + encodeURIComponent(a.key); } },
      el("title", {}, [a.key, a.description, a.stale ? "stale: " + a.stale : "", overdue ? "overdue: " + a.freshness.reason : "",
        a.status ? "newest: " + a.status + " " + when(a.finishedAt) : "never materialized"].filter(Boolean).join("\n")),
      el("rect", { class: "box", width: NODE_W, height: NODE_H }),
      el("text", { x: 8, y: 17 }, a.key.length > 24 ? a.key.slice(0, 23) + "…" : a.key),
      el("text", { class: "sub", x: 8, y: 31 }, [compound ? "" : a.group, a.partitions, a.schedule ? "⏱ " + a.schedule : ""].filter(Boolean).join(" · ") || (a.status || "never materialized")));
    if (a.kind && a.kind !== "standard") ge.append(el("text", { class: "kind", x: NODE_W - 6, y: 13, "text-anchor": "end" }, a.kind));
    const marks = [overdue ? "overdue" : "", a.stale ? "stale" : ""].filter(Boolean).join(" · ");
    if (marks) ge.append(el("text", { class: overdue ? "overdue" : "stale", x: NODE_W - 6, y: 31, "text-anchor": "end" }, marks));
    if (a.health) ge.append(healthBar(a.health, 8, NODE_H - 12, NODE_W - 16, 6));
    view.append(ge);
    nodes.push({ a, ge, x: n.x, y: n.y });
  }
  svg.replaceChildren(el("defs", {}, el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" },
    el("path", { d: "M0 0 L10 5 L0 10 z", fill: "#8b949e" }))), view);

  // Pan and zoom: a transform on the viewport group.
  const gw = g.graph().width, gh = g.graph().height;
  let t = { x: 0, y: 0, k: 1 };
  const apply = () => view.setAttribute("transform", `translate(${t.x},${t.y}) scale(${t.k})`);
  const fit = () => {
    const r = svg.getBoundingClientRect();
    const k = Math.min(r.width / gw, r.height / gh, 1.5);
    t = { k, x: (r.width - gw * k) / 2, y: (r.height - gh * k) / 2 };
    apply();
  };
  const centerOn = (x, y, k) => {
    const r = svg.getBoundingClientRect();
    t = { k, x: r.width / 2 - x * k, y: r.height / 2 - y * k };
    apply();
  };
  fit();
  document.getElementById("fit").onclick = fit;
  svg.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const r = svg.getBoundingClientRect();
    const mx = ev.clientX - r.left, my = ev.clientY - r.top;
    const k = Math.min(4, Math.max(0.05, t.k * Math.exp(-ev.deltaY * 0.0015)));
    t = { k, x: mx - (mx - t.x) * (k / t.k), y: my - (my - t.y) * (k / t.k) };
    apply();
  }, { passive: false });
  let drag = null;
  svg.addEventListener("pointerdown", (ev) => {
    if (ev.target.closest(".node")) return;
    drag = { x: ev.clientX - t.x, y: ev.clientY - t.y };
    svg.classList.add("dragging");
    svg.setPointerCapture(ev.pointerId);
  });
  svg.addEventListener("pointermove", (ev) => { if (drag) { t.x = ev.clientX - drag.x; t.y = ev.clientY - drag.y; apply(); } });
  const end = () => { drag = null; svg.classList.remove("dragging"); };
  svg.addEventListener("pointerup", end);
  svg.addEventListener("pointercancel", end);

  // Search dims the assets that do not match; Enter centres on the first.
  const matches = () => {
    const q = search.value.trim().toLowerCase();
    const hits = [];
    for (const n of nodes) {
      const hay = [n.a.key, n.a.group, n.a.kind, ...(n.a.tags || [])].join(" ").toLowerCase();
      const hit = q !== "" && hay.includes(q);
      n.ge.classList.toggle("hit", hit);
      n.ge.classList.toggle("dim", q !== "" && !hit);
      if (hit) hits.push(n);
    }
    document.getElementById("count").textContent = q ? hits.length + " of " + nodes.length + " assets match" : nodes.length + " assets";
    return hits;
  };
  search.addEventListener("input", matches);
  search.addEventListener("keydown", (ev) => {
    if (ev.key !== "Enter") return;
    const hits = matches();
    if (hits.length) centerOn(hits[0].x, hits[0].y, Math.max(t.k, 1));
  });
}

const ORDER = ["succeeded", "reused", "running", "waiting", "queued", "pending", "failed", "upstream_failed", "skipped", "cancelled"];

function healthBar(health, x, y, w, h) {
  const total = Object.values(health).reduce((s, v) => s + v, 0);
  const g = el("g", { class: "health-bar" }, el("rect", { class: "band s-", x, y, width: w, height: h }));
  let at = x;
  for (const s of ORDER) {
    if (!health[s]) continue;
    const part = (health[s] / total) * w;
    g.append(el("rect", { class: "band s-" + s, x: at, y, width: part, height: h }, el("title", {}, health[s] + " " + s)));
    at += part;
  }
  g.append(el("title", {}, Object.entries(health).map(([k, v]) => v + " " + k).join(", ") + " partitions"));
  return g;
}

// ---- asset page ----

async function assetPage(pipeline, key, query) {
  const part = query.get("partition");
  const d = await api("pipelines/" + encodeURIComponent(pipeline) + "/assets/" + encodeURIComponent(key) + (part ? "?partition=" + encodeURIComponent(part) : ""));
  const n = d.node;
  const props = el("dl", { class: "props" });
  const prop = (k, v) => { if (v !== undefined && v !== null && v !== "" && !(Array.isArray(v) && !v.length)) props.append(el("dt", {}, k), el("dd", {}, v)); };
  prop("pipeline", d.pipeline);
  prop("kind", n.kind);
  prop("group", n.group);
  prop("code version", el("code", {}, n.codeVersion));
  prop("partitions", n.partitions);
  prop("schedule", n.schedule);
  prop("value type", d.valueType ? el("code", {}, d.valueType) : "");
  prop("retries", d.retries || "");
  prop("timeout", d.timeout);
  prop("queue", d.queue);
  prop("resources", (d.resources || []).join(", "));
  prop("tags", (n.tags || []).join(", "));
  if (n.freshness) prop("freshness", freshnessText(n.freshness));
  prop("stale", n.staleReasons ? el("div", { id: "stale" }, n.staleReasons.map((r) => el("div", { class: "stale-reason" }, r)),
    n.stalePartitions ? el("div", { class: "muted" }, "partitions: " + abbreviate(n.stalePartitions, 6)) : null) : "");

  const lineage = el("div", {},
    el("h2", {}, "Lineage"),
    el("p", {}, "Upstream: ", n.deps.length ? n.deps.map((x, i) => [i ? ", " : "", assetLink(pipeline, x.asset), el("span", { class: "muted" }, " (" + x.kind + ")")]) : el("span", { class: "muted" }, "none")),
    el("p", {}, "Downstream: ", (d.downstream || []).length ? d.downstream.map((x, i) => [i ? ", " : "", assetLink(pipeline, x)]) : el("span", { class: "muted" }, "none")));
  const mats = d.materializations || [];
  const newest = part ? mats.find((m) => m.partition === part) : mats[0];
  if (newest && newest.upstream) {
    lineage.append(el("p", {}, "Materialization ", el("code", {}, newest.id), " read: ",
      newest.upstream.map((u, i) => [i ? ", " : "", assetLink(pipeline, u.asset, u.partition), u.partition ? " [" + u.partition + "]" : ""])));
  }

  const kids = [el("h1", {}, el("a", { href: "#/graph?pipeline=" + encodeURIComponent(pipeline) }, pipeline), " / ", key, " ", pill(n.status || (mats[0] && mats[0].status)))];
  if (n.description) kids.push(el("p", { id: "description" }, n.description));
  kids.push(el("div", { class: "grid2" }, el("div", {}, el("h2", {}, "Definition"), props), lineage));

  if (d.partitions) kids.push(partitionsMatrix(pipeline, key, d.partitions, part));
  kids.push(metadataCharts(mats));
  if ((d.checks || []).length) kids.push(checksSection(d.checks, newest));
  kids.push(el("h2", {}, "Materializations" + (part ? " (partition " + part + ")" : "")), materializationsTable(pipeline, part ? mats.filter((m) => m.partition === part) : mats));
  if (d.preview) {
    const pv = d.preview;
    kids.push(el("h2", {}, "Value" + (pv.partition ? " of partition " + pv.partition : "")),
      pv.error ? el("p", { class: "muted" }, pv.error) : el("pre", { id: "preview" }, pv.text + (pv.truncated ? "\n… (" + pv.size + " bytes, cut)" : "")));
  }
  kids.push(el("h2", {}, "Logs" + (d.logsOf ? " of run " + d.logsOf.run + (d.logsOf.partition ? ", partition " + d.logsOf.partition : "") : "")),
    d.logs ? logsBlock(d.logs, false) : el("p", { class: "muted", id: "logs" }, "Not materialized yet."));
  show(...kids);
}

// logsBlock shows what asset code logged (flowstone.Logger), attempt by
// attempt; withAsset names each attempt's asset (a run's logs).
function logsBlock(logs, withAsset) {
  if (!logs.length) return el("p", { class: "muted", id: "logs" }, "Nothing logged at Info level or above.");
  const line = (l) => [new Date(l.time).toLocaleTimeString(), l.level.padEnd(5), l.message,
    ...Object.entries(l.attrs || {}).map(([k, v]) => k + "=" + (typeof v === "object" ? JSON.stringify(v) : v))].join(" ");
  return el("div", { id: "logs" }, logs.map((a) => [
    el("div", { class: "muted" }, (withAsset ? a.asset + (a.partition ? " [" + a.partition + "]" : "") + ", " : "") + "attempt " + a.attempt + (a.truncated ? " (truncated)" : "")),
    el("pre", {}, a.lines.map(line).join("\n"))]));
}

function partitionsMatrix(pipeline, key, parts, selected) {
  const counts = {};
  for (const p of parts) counts[p.status] = (counts[p.status] || 0) + 1;
  const bar = el("span", { class: "health" });
  for (const s of ORDER) if (counts[s]) bar.append(el("span", { class: "st-" + s, style: null, title: counts[s] + " " + s }));
  // Widths through the CSSOM (allowed by the page's CSP, unlike style="").
  [...bar.children].forEach((c) => { c.style.width = (100 * counts[c.className.slice(3)] / parts.length) + "%"; });
  const grid = el("div", { class: "matrix", id: "partitions" }, parts.map((p) =>
    el("a", { class: "st-" + p.status + (p.partition === selected ? " sel" : ""), "data-partition": p.partition, title: p.partition + ": " + p.status,
      href: "#/asset/" + encodeURIComponent(pipeline) + "/" + encodeURIComponent(key) + "?partition=" + encodeURIComponent(p.partition) })));
  return el("div", {}, el("h2", {}, "Partitions"),
    el("p", {}, bar, " ", parts.length + " partitions materialized: ", Object.entries(counts).map(([k, v]) => v + " " + k).join(", ")),
    parts.length ? grid : el("p", { class: "muted" }, "No partition has been materialized yet."));
}

function materializationsTable(pipeline, mats) {
  if (!mats.length) return el("p", { class: "muted" }, "Never materialized.");
  return el("table", { id: "materializations" },
    el("tr", {}, ["finished", "partition", "status", "checks", "run", "attempts", "code version", "metadata"].map((h) => el("th", {}, h))),
    mats.map((m) => el("tr", { "data-materialization": m.id, class: (m.checks || []).some((c) => c.blocks) ? "blocks" : null },
      el("td", {}, when(m.finishedAt)), el("td", {}, m.partition || ""), el("td", {}, pill(m.status), m.error ? el("div", { class: "error" }, m.error) : null),
      el("td", { class: "checks" }, (m.checks || []).map((c) => el("span", { class: "check " + checkClass(c), title: checkTitle(c) }, (c.passed ? "✓ " : "✗ ") + c.check))),
      el("td", {}, runLink(m.run)), el("td", {}, m.attempts), el("td", {}, el("code", {}, (m.codeVersion || "").slice(0, 12))),
      el("td", {}, metadataCells(m.metadata)))));
}

// checkClass is a check result's style: passed, a warning, a failure, or
// a blocking failure (its materialization is failed for its dependents).
function checkClass(c) {
  if (c.passed) return "passed";
  return c.blocks ? "failed blocks" : c.severity === "warn" ? "warned" : "failed";
}

function checkTitle(c) {
  return c.check + ": " + (c.passed ? "passed" : "failed") + " (" + c.severity + (c.blocking ? ", blocking" : "") + ")" + (c.description ? "\n" + c.description : "");
}

function metadataCells(md) {
  return Object.entries(md || {}).map(([k, v]) => el("div", {}, el("code", {}, k), " = ", typeof v === "object" ? JSON.stringify(v) : String(v)));
}

// checksSection lists the asset's checks with their results about the
// materialization shown.
function checksSection(defs, mat) {
  const results = (mat && mat.checks) || [];
  return el("div", {}, el("h2", {}, "Checks" + (mat ? " of materialization " + mat.id.slice(0, 12) + (mat.partition ? " [" + mat.partition + "]" : "") : "")),
    el("table", { id: "checks" },
      el("tr", {}, ["check", "result", "severity", "blocking", "description", "metadata", "at"].map((h) => el("th", {}, h))),
      defs.map((d) => {
        const c = results.find((r) => r.check === d.name);
        if (!c) return el("tr", { "data-check": d.name }, el("td", {}, d.name), el("td", { class: "muted" }, mat ? "not run yet" : "never run"),
          el("td", {}, d.severity), el("td", {}, d.blocking ? "blocking" : ""), el("td", {}, d.description || ""), el("td", {}), el("td", {}));
        return el("tr", { "data-check": d.name, class: c.blocks ? "blocks" : null },
          el("td", {}, d.name), el("td", {}, el("span", { class: "check " + checkClass(c) }, c.passed ? "passed" : c.blocks ? "failed, blocking" : "failed")),
          el("td", {}, c.severity), el("td", {}, c.blocking ? "blocking" : ""), el("td", {}, c.description || d.description || ""),
          el("td", {}, metadataCells(c.metadata)), el("td", {}, when(c.at)));
      })));
}

function freshnessText(f) {
  const age = f.age ? "materialized " + f.age + " ago" : "never materialized";
  return el("span", { id: "freshness", class: f.overdue ? "overdue" : "" }, (f.overdue ? "overdue: " : "fresh: ") + "bound " + f.bound +
    (f.partition ? ", partition " + f.partition : "") + ", " + age + (f.due ? ", due " + when(f.due) : "") + (f.overdue && f.reason ? " (" + f.reason + ")" : ""));
}

function abbreviate(list, n) {
  return list.length <= n ? list.join(", ") : list.slice(0, n).join(", ") + " and " + (list.length - n) + " more";
}

// metadataCharts plots each numeric metadata key over time (oldest left).
function metadataCharts(mats) {
  const series = {};
  for (const m of [...mats].reverse()) {
    for (const [k, v] of Object.entries(m.metadata || {})) {
      if (typeof v === "number") (series[k] = series[k] || []).push({ t: new Date(m.finishedAt).getTime(), v, p: m.partition });
    }
  }
  const keys = Object.keys(series);
  if (!keys.length) return el("div", {});
  const W = 300, H = 90;
  return el("div", { id: "charts" }, el("h2", {}, "Metadata over time"), keys.map((k) => {
    const pts = series[k];
    const vs = pts.map((p) => p.v), lo = Math.min(...vs), hi = Math.max(...vs);
    const t0 = pts[0].t, t1 = pts[pts.length - 1].t;
    const xy = pts.map((p, i) => {
      const x = 30 + (pts.length === 1 ? (W - 40) / 2 : (t1 === t0 ? i / (pts.length - 1) : (p.t - t0) / (t1 - t0)) * (W - 40));
      const y = 15 + (hi === lo ? (H - 30) / 2 : (1 - (p.v - lo) / (hi - lo)) * (H - 30));
      return [x, y, p];
    });
    return el("svg", { class: "chart", width: W, height: H, "data-key": k },
      el("text", { x: 4, y: 11 }, k + " (" + pts.length + ")"),
      el("text", { x: W - 4, y: 11, "text-anchor": "end" }, "max " + hi),
      el("text", { x: W - 4, y: H - 3, "text-anchor": "end" }, "min " + lo),
      el("polyline", { points: xy.map(([x, y]) => x.toFixed(1) + "," + y.toFixed(1)).join(" ") }),
      xy.map(([x, y, p]) => el("circle", { cx: x, cy: y, r: 2.5, fill: "#3b7dd8" }, el("title", {}, (p.p ? p.p + ": " : "") + p.v))));
  }));
}

// ---- runs ----

async function runsPage(query) {
  const qs = new URLSearchParams();
  for (const k of ["pipeline", "status", "partition", "started_by"]) if (query.get(k)) qs.set(k, query.get(k));
  const runs = await api("runs?" + qs);
  const field = (name, options) => {
    const cur = query.get(name) || "";
    if (!options) return el("input", { name, value: cur, placeholder: name, size: 12 });
    return el("select", { name }, el("option", { value: "" }, "any " + name.replace("_", " ")), options.map((o) => el("option", { value: o, selected: o === cur }, o)));
  };
  const form = el("form", { class: "toolbar", id: "filters", onsubmit: (ev) => {
    ev.preventDefault();
    const f = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) f.set(k, v);
    location.hash = "#/runs?" + f;
  } }, field("pipeline", state.session.pipelines), field("status", ["running", "succeeded", "failed", "cancelled"]), field("partition"),
    field("started_by", ["user", "schedule", "sensor", "backfill"]), el("button", { type: "submit" }, "Filter"));
  show(el("h1", {}, "Runs"), form, runs.length ? el("table", { id: "runs" },
    el("tr", {}, ["run", "pipeline", "partition", "status", "started by", "started", "took", "open", "failed"].map((h) => el("th", {}, h))),
    runs.map((r) => el("tr", {}, el("td", {}, runLink(r.id)), el("td", {}, r.pipeline), el("td", {}, r.partition), el("td", {}, pill(r.status)),
      el("td", {}, r.startedBy), el("td", {}, when(r.createdAt)), el("td", {}, dur(r.createdAt, r.finishedAt)), el("td", {}, r.pending), el("td", {}, r.failed))))
    : el("p", { class: "muted" }, "No runs match."));
}

async function runPage(id) {
  const head = el("div", {});
  const gantt = el("div", {});
  const table = el("div", {});
  const msg = el("p", { class: "error", id: "message" });
  show(head, msg, gantt, table);
  const render = (run) => {
    const cancel = run.status === "running" && state.session.writable
      ? el("button", { class: "danger", id: "cancel", onclick: async () => {
        if (!confirm("Cancel run " + run.id + "?")) return;
        try { await post("runs/" + encodeURIComponent(run.id) + "/cancel"); } catch (err) { msg.textContent = err.message; }
      } }, "Cancel run") : null;
    head.replaceChildren(el("h1", {}, "Run ", el("code", {}, run.id), " ", el("span", { id: "run-status" }, pill(run.status)), " ", cancel),
      el("p", {}, "Pipeline ", el("a", { href: "#/graph?pipeline=" + encodeURIComponent(run.pipeline) }, run.pipeline),
        run.partition ? ", partition " + run.partition : "", ", started " + when(run.createdAt),
        run.finishedAt ? ", took " + dur(run.createdAt, run.finishedAt) : " (live)"));
    gantt.replaceChildren(el("h2", {}, "Timeline"), ganttChart(run));
    table.replaceChildren(el("h2", {}, "Assets"), el("table", { id: "nodes" },
      el("tr", {}, ["asset", "partition", "kind", "status", "checks", "attempts", "took", "error"].map((h) => el("th", {}, h))),
      run.nodes.map((n) => el("tr", { "data-asset": n.asset, class: (n.checks || []).some((c) => c.blocks) ? "blocks" : null },
        el("td", {}, assetLink(run.pipeline, n.asset, n.partition)), el("td", {}, n.partition), el("td", {}, n.kind),
        el("td", {}, pill(n.status), n.scatter ? " " + n.scatter.done + "/" + n.scatter.total + (n.scatter.failed ? " (" + n.scatter.failed + " failed)" : "") : "",
          n.status === "waiting" && n.kind === "gate" ? [" ", el("a", { href: "#/gates" }, "decide")] : null),
        el("td", { class: "checks" }, (n.checks || []).map((c) => el("span", { class: "check " + checkClass(c), title: checkTitle(c) }, (c.passed ? "✓ " : "✗ ") + c.check))),
        el("td", {}, n.attempts), el("td", {}, dur(n.startedAt, n.finishedAt)), el("td", { class: "error" }, n.error || "")))));
  };
  const logs = el("div", {});
  const loadLogs = async () => {
    try { logs.replaceChildren(el("h2", {}, "Logs"), logsBlock(await api("runs/" + encodeURIComponent(id) + "/logs"), true)); } catch (err) { logs.replaceChildren(el("p", { class: "error" }, err.message)); }
  };
  main().append(logs);
  render(await api("runs/" + encodeURIComponent(id)));
  loadLogs();
  const es = new EventSource("api/runs/" + encodeURIComponent(id) + "/events");
  state.stream = es;
  let seen = 0;
  const outage = el("p", { class: "error" });
  main().prepend(outage);
  es.addEventListener("unreachable", (ev) => { outage.textContent = JSON.parse(ev.data).error; });
  es.addEventListener("run", (ev) => {
    outage.textContent = "";
    const run = JSON.parse(ev.data);
    render(run);
    const done = run.nodes.filter((n) => n.finishedAt).length;
    if (done !== seen) { seen = done; loadLogs(); }
  });
  es.addEventListener("end", () => { es.close(); loadLogs(); });
}

// ganttChart draws one row per node: a bar from its start to its end (now
// while it runs), coloured by status, with its attempts.
function ganttChart(run) {
  const t0 = new Date(run.createdAt).getTime();
  const now = Date.now();
  const end = Math.max(t0 + 1, ...run.nodes.map((n) => n.finishedAt ? new Date(n.finishedAt).getTime() : (n.startedAt ? now : t0)),
    run.finishedAt ? new Date(run.finishedAt).getTime() : now);
  const W = 900, L = 220, row = 20;
  const x = (t) => L + ((t - t0) / (end - t0)) * (W - L - 10);
  const svg = el("svg", { class: "gantt", id: "gantt", viewBox: `0 0 ${W} ${run.nodes.length * row + 24}`, height: run.nodes.length * row + 24 });
  run.nodes.forEach((n, i) => {
    const y = i * row + 4;
    svg.append(el("text", { x: 4, y: y + 13 }, n.asset + (n.partition && n.partition !== run.partition ? " [" + n.partition + "]" : "")));
    if (!n.startedAt) {
      svg.append(el("text", { x: L, y: y + 13, class: "muted" }, n.status));
      return;
    }
    const s = new Date(n.startedAt).getTime(), f = n.finishedAt ? new Date(n.finishedAt).getTime() : now;
    svg.append(el("rect", { class: "bar s-" + n.status, x: x(s), y, width: Math.max(2, x(f) - x(s)), height: row - 6 },
      el("title", {}, n.asset + ": " + n.status + ", " + dur(n.startedAt, n.finishedAt) + (n.attempts > 1 ? ", " + n.attempts + " attempts" : ""))));
    if (n.attempts > 1) svg.append(el("text", { x: x(f) + 4, y: y + 13 }, "×" + n.attempts));
  });
  svg.append(el("text", { x: L, y: run.nodes.length * row + 18 }, "0"), el("text", { x: W - 10, y: run.nodes.length * row + 18, "text-anchor": "end" }, dur(run.createdAt, new Date(end).toISOString())));
  return svg;
}

// ---- gates ----

async function gatesPage() {
  const [gates, decided] = await Promise.all([api("gates"), api("gates/decided?limit=20")]);
  // A decision's message outlives the redraw that lists it as decided.
  const flash = state.flash && Date.now() - state.flash.at < 5000 ? state.flash.text : "";
  state.flash = null;
  const msg = el("p", { class: flash ? "muted" : "error", id: "message" }, flash);
  const kids = [el("h1", {}, "Gates waiting"), msg];
  if (!state.session.writable) kids.push(el("p", { class: "notice" }, "This server is read-only: start serve with --user NAME:PASSWORD to approve and reject here."));
  else if (!credentials()) kids.push(el("p", { class: "notice" }, "Sign in (top right) to approve or reject."));
  if (!gates.length) kids.push(el("p", { class: "muted", id: "no-gates" }, "No gate is waiting."));
  else kids.push(el("table", { id: "gates" }, el("tr", {}, ["pipeline", "run", "asset", "partition", "waiting since", "decision"].map((h) => el("th", {}, h))),
    gates.map((g) => {
      const reason = el("input", { placeholder: "reason", size: 24, class: "reason" });
      const decide = (action) => async () => {
        try {
          const out = await post("gates/" + action, { run: g.run, asset: g.asset, partition: g.partition, reason: reason.value });
          msg.className = "muted";
          msg.textContent = out.by + (out.verified ? "" : " (unverified)") + " " + (action === "approve" ? "approved" : "rejected") + " " + out.ref;
          state.flash = { text: msg.textContent, at: Date.now() };
          setTimeout(route, 300);
        } catch (err) { msg.className = "error"; msg.textContent = err.message; }
      };
      return el("tr", { "data-run": g.run, "data-asset": g.asset },
        el("td", {}, g.pipeline), el("td", {}, runLink(g.run)), el("td", {}, assetLink(g.pipeline, g.asset, g.partition)), el("td", {}, g.partition),
        el("td", {}, when(g.since)),
        g.decision ? el("td", {}, decisionText(g.decision), " (being applied)")
          : el("td", {}, reason, " ", el("button", { class: "approve", onclick: decide("approve") }, "Approve"), " ", el("button", { class: "reject danger", onclick: decide("reject") }, "Reject")));
    })));
  kids.push(el("h2", {}, "Decided"));
  if (!decided.length) kids.push(el("p", { class: "muted", id: "no-decided" }, "No gate was decided yet."));
  else kids.push(el("table", { id: "decided" }, el("tr", {}, ["pipeline", "run", "asset", "partition", "decision", "by", "at", "reason"].map((h) => el("th", {}, h))),
    decided.map((g) => el("tr", { "data-run": g.run, "data-asset": g.asset },
      el("td", {}, g.pipeline), el("td", {}, runLink(g.run)), el("td", {}, assetLink(g.pipeline, g.asset, g.partition)), el("td", {}, g.partition),
      el("td", {}, el("span", { class: "pill " + (g.decision.action === "approve" ? "st-succeeded" : "st-failed") }, pastTense(g.decision.action))),
      el("td", { class: g.decision.verified ? "" : "unverified", title: g.decision.verified ? "signed in" : "no sign-in vouched for this name" }, g.decision.decider),
      el("td", {}, when(g.decision.at)), el("td", {}, g.decision.reason || "")))));
  show(...kids);
}

function pastTense(action) {
  return { approve: "approved", reject: "rejected", fail: "failed" }[action] || action;
}

function decisionText(d) {
  return pastTense(d.action) + " by " + d.decider;
}

// ---- health: freshness, staleness, failed checks ----

async function healthPage(query) {
  const d = await api("health" + (query.get("pipeline") ? "?pipeline=" + encodeURIComponent(query.get("pipeline")) : ""));
  const many = d.pipelines.length > 1;
  const asset = (x) => assetLink(x.pipeline, x.asset, x.partition);
  const kids = [el("h1", {}, "Health")];
  const overdue = d.freshness.filter((f) => f.freshness.overdue);
  kids.push(el("h2", {}, "Freshness"), el("p", { class: "muted" }, overdue.length + " of " + d.freshness.length + " assets with a freshness bound (fresh=) are overdue."));
  if (d.freshness.length) kids.push(el("table", { id: "freshness" },
    el("tr", {}, [many ? "pipeline" : null, "asset", "state", "bound", "partition", "materialized", "age", "due", "reason"].filter(Boolean).map((h) => el("th", {}, h))),
    d.freshness.map((x) => { const f = x.freshness; return el("tr", { "data-asset": x.asset, class: f.overdue ? "overdue" : null },
      many ? el("td", {}, x.pipeline) : null, el("td", {}, assetLink(x.pipeline, x.asset)),
      el("td", {}, el("span", { class: "pill " + (f.overdue ? "st-failed" : "st-succeeded") }, f.overdue ? "overdue" : "fresh")),
      el("td", {}, f.bound), el("td", {}, f.partition || ""), el("td", {}, f.materializedAt ? when(f.materializedAt) : "never"),
      el("td", {}, f.age || ""), el("td", {}, f.due ? when(f.due) : ""), el("td", {}, f.reason || "")); })));
  kids.push(el("h2", {}, "Stale"));
  if (!d.stale.length) kids.push(el("p", { class: "muted", id: "no-stale" }, "No asset is stale: every newest materialization follows from its code and upstreams."));
  else kids.push(el("table", { id: "stale" },
    el("tr", {}, [many ? "pipeline" : null, "asset", "why", "partitions"].filter(Boolean).map((h) => el("th", {}, h))),
    d.stale.map((x) => el("tr", { "data-asset": x.asset }, many ? el("td", {}, x.pipeline) : null, el("td", {}, assetLink(x.pipeline, x.asset)),
      el("td", {}, x.staleReasons.map((r) => el("div", {}, r))), el("td", {}, x.stalePartitions ? abbreviate(x.stalePartitions, 6) : "")))));
  kids.push(el("h2", {}, "Failed checks"));
  if (!d.failedChecks.length) kids.push(el("p", { class: "muted", id: "no-failed-checks" }, "No check has failed."));
  else kids.push(el("table", { id: "failed-checks" },
    el("tr", {}, ["asset", "partition", "check", "result", "severity", "description", "metadata", "run", "at"].map((h) => el("th", {}, h))),
    d.failedChecks.map((c) => el("tr", { "data-asset": c.asset, "data-check": c.check, class: c.blocks ? "blocks" : null },
      el("td", {}, asset(c)), el("td", {}, c.partition || ""), el("td", {}, c.check),
      el("td", {}, el("span", { class: "check " + checkClass(c) }, c.blocks ? "failed, blocking" : "failed")), el("td", {}, c.severity),
      el("td", {}, c.description || ""), el("td", {}, metadataCells(c.metadata)), el("td", {}, c.run ? runLink(c.run) : "check run alone"), el("td", {}, when(c.at))))));
  show(...kids);
}

// ---- backfills ----

async function backfillsPage() {
  const bfs = await api("backfills");
  const msg = el("p", { class: "error" });
  if (!bfs.length) return show(el("h1", {}, "Backfills"), el("p", { class: "muted" }, "No backfills."));
  show(el("h1", {}, "Backfills"), msg, el("table", { id: "backfills" },
    el("tr", {}, ["backfill", "pipeline", "status", "progress", "partitions", "started", ""].map((h) => el("th", {}, h))),
    bfs.map((b) => {
      const bar = el("div", { class: "progress", title: `${b.succeeded} succeeded, ${b.running} running, ${b.failed} failed, ${b.cancelled} cancelled, ${b.pending} pending` });
      for (const [k, cls] of [["succeeded", "st-succeeded"], ["running", "st-running"], ["failed", "st-failed"], ["cancelled", "st-cancelled"]]) {
        const s = el("span", { class: cls });
        s.style.width = (100 * b[k] / Math.max(1, b.total)) + "%";
        bar.append(s);
      }
      const cancel = b.status === "running" && state.session.writable ? el("button", { class: "danger", onclick: async () => {
        try { await post("backfills/" + encodeURIComponent(b.id) + "/cancel"); route(); } catch (err) { msg.textContent = err.message; }
      } }, "Cancel") : null;
      return el("tr", {}, el("td", {}, el("code", {}, b.id)), el("td", {}, b.pipeline), el("td", {}, pill(b.status)), el("td", {}, bar),
        el("td", {}, `${b.succeeded + b.failed + b.cancelled}/${b.total} done`), el("td", {}, when(b.createdAt)), el("td", {}, cancel));
    })));
}

// ---- schedules and sensors ----

async function schedulesPage() {
  const d = await api("schedules");
  show(el("h1", {}, "Schedules"), d.schedules.length ? el("table", { id: "schedules" },
    el("tr", {}, ["pipeline", "asset", "cron", "recent ticks"].map((h) => el("th", {}, h))),
    d.schedules.map((s) => el("tr", {}, el("td", {}, s.pipeline), el("td", {}, assetLink(s.pipeline, s.asset)), el("td", {}, el("code", {}, s.cron)),
      el("td", {}, s.runs.length ? s.runs.slice(0, 8).map((r) => el("div", {}, runLink(r.id), " ", pill(r.status), " ", when(r.createdAt))) : el("span", { class: "muted" }, "no tick yet")))))
    : el("p", { class: "muted" }, "No asset has a schedule."),
  el("h1", {}, "Sensors"), d.sensors.length ? el("table", { id: "sensors" },
    el("tr", {}, ["pipeline", "sensor", "every", "targets", "cursor", "evaluations", "runs", "last evaluated", "last error"].map((h) => el("th", {}, h))),
    d.sensors.map((s) => el("tr", {}, el("td", {}, s.pipeline), el("td", { title: s.description || "" }, s.name), el("td", {}, s.every),
      el("td", {}, s.targets.join(", ")), el("td", {}, el("code", {}, s.cursor)), el("td", {}, s.evaluations), el("td", {}, s.runs),
      el("td", {}, when(s.evaluatedAt)), el("td", { class: "error" }, s.lastError || ""))))
    : el("p", { class: "muted" }, "No sensors."),
  el("h1", {}, "Automation"), d.automation.length ? el("table", { id: "automation" },
    el("tr", {}, ["evaluated", "pipeline", "asset", "partition", "decision", "run", "reason"].map((h) => el("th", {}, h))),
    d.automation.map((a) => el("tr", {}, el("td", {}, when(a.evaluatedAt)), el("td", {}, a.pipeline), el("td", {}, assetLink(a.pipeline, a.asset)),
      el("td", {}, a.partition || ""), el("td", {}, a.decision), el("td", {}, a.run ? runLink(a.run) : ""), el("td", {}, a.reason))))
    : el("p", { class: "muted" }, "No automation decisions: add auto=eager or auto=missing to an asset."));
}

// ---- start ----

async function start() {
  try {
    state.session = await api("session");
  } catch (err) { return fail(err); }
  document.getElementById("river-link").hidden = !state.session.river;
  renderWho();
  window.addEventListener("hashchange", route);
  route();
}
start();
