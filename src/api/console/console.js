// The dabba ops console: plain JavaScript, served by dabba itself, talking only to dabba.
// State comes from GET /v1/ops/live (riders, live orders), then stays current over the ops
// WebSocket (order.updated, rider.location), resuming with `since` after a drop; the
// supervision view, dead letters and audit log are polled. `window.dabbaConsole` exposes the
// state for browser tests.
"use strict";

const TOKEN_KEY = "dabba-ops-token";
const COLORS = {
  available: "#5fd38d", busy: "#f5a623", offline: "#5b6270",
  scheduled: "#6c7a89", awaiting_restaurant: "#c8d6e5", preparing: "#9b8cff",
  finding_rider: "#ff9f43", rider_assigned: "#48dbfb", picked_up: "#1dd1a1", late: "#ff6b6b",
};

const state = {
  token: null,
  riders: new Map(), // id -> {id, name, status, location, order_id}
  orders: new Map(), // id -> order object
  lastSeq: 0,
  selected: null,
  moves: 0, // rider positions received over the socket
};
window.dabbaConsole = state;

const $ = (id) => document.getElementById(id);
const short = (id) => (id ? String(id).slice(0, 8) : "—");
const time = (t) => (t ? new Date(t).toLocaleTimeString() : "—");

function takeToken() {
  // A link from `dabba demo` carries the token in the fragment (never sent to a server).
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: { Authorization: `Bearer ${state.token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (res.status === 401 || res.status === 403) {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin();
  }
  if (!res.ok) {
    const msg = data && data.error ? `${data.error.code}: ${data.error.message}` : `HTTP ${res.status}`;
    throw new Error(msg);
  }
  return data;
}

// Late: past its estimated delivery (or, without one, past the time it was wanted).
function minutesLate(o) {
  const due = (o.eta && o.eta.deliver_at) || o.deliver_at;
  if (!due) return 0;
  const late = (Date.now() - new Date(due).getTime()) / 60000;
  return late >= 1 ? Math.floor(late) : 0;
}

// ---- live state -------------------------------------------------------------------------

async function loadSnapshot() {
  const live = await api("GET", "/v1/ops/live");
  for (const r of live.riders) state.riders.set(r.id, r);
  const seen = new Set();
  for (const o of live.orders) {
    seen.add(o.id);
    keepOrder(o);
  }
  for (const id of [...state.orders.keys()]) if (!seen.has(id)) state.orders.delete(id);
}

function keepOrder(o) {
  const have = state.orders.get(o.id);
  if (have && have.version > o.version) return; // a stale push
  if (["completed", "cancelled", "rejected"].includes(o.status)) state.orders.delete(o.id);
  else state.orders.set(o.id, o);
}

function connect() {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const since = state.lastSeq ? `&since=${state.lastSeq}` : "";
  const ws = new WebSocket(`${proto}://${location.host}/v1/ws?token=${encodeURIComponent(state.token)}${since}`);
  ws.onopen = () => setStatus("live", "live");
  ws.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    if (typeof m.seq === "number") state.lastSeq = Math.max(state.lastSeq, m.seq);
    if (m.type === "order.updated") keepOrder(m.order);
    else if (m.type === "rider.location") {
      const r = state.riders.get(m.rider_id) || { id: m.rider_id, name: "", status: "available" };
      r.location = m.location;
      state.riders.set(m.rider_id, r);
      state.moves += 1;
    } else if (m.type === "supervision") refreshActors();
  };
  ws.onclose = () => {
    setStatus("down", "reconnecting…");
    setTimeout(connect, 1000);
  };
}

function setStatus(kind, text) {
  $("status").dataset.state = kind;
  $("status").textContent = text;
}

// ---- drawing ----------------------------------------------------------------------------

function bounds() {
  const pts = [];
  for (const r of state.riders.values()) if (r.location) pts.push(r.location);
  for (const o of state.orders.values()) pts.push(o.delivery.location);
  if (!pts.length) return null;
  let b = { minLat: 90, maxLat: -90, minLng: 180, maxLng: -180 };
  for (const p of pts) {
    b.minLat = Math.min(b.minLat, p.lat); b.maxLat = Math.max(b.maxLat, p.lat);
    b.minLng = Math.min(b.minLng, p.lng); b.maxLng = Math.max(b.maxLng, p.lng);
  }
  const pad = 0.005;
  return { minLat: b.minLat - pad, maxLat: b.maxLat + pad, minLng: b.minLng - pad, maxLng: b.maxLng + pad };
}

function draw() {
  const canvas = $("map");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const b = bounds();
  if (!b) return;
  // Equirectangular, longitudes shrunk by the latitude's cosine: true shapes at city scale.
  const k = Math.cos(((b.minLat + b.maxLat) / 2) * Math.PI / 180);
  const w = (b.maxLng - b.minLng) * k, h = b.maxLat - b.minLat;
  const scale = Math.min(canvas.width / w, canvas.height / h);
  const x = (p) => (p.lng - b.minLng) * k * scale + (canvas.width - w * scale) / 2;
  const y = (p) => canvas.height - ((p.lat - b.minLat) * scale + (canvas.height - h * scale) / 2);
  for (const o of state.orders.values()) {
    const color = minutesLate(o) ? COLORS.late : COLORS[o.stage] || "#fff";
    const d = o.delivery.location;
    ctx.fillStyle = color;
    ctx.fillRect(x(d) - 4, y(d) - 4, 8, 8);
    const rider = o.rider_id && state.riders.get(o.rider_id);
    if (rider && rider.location) {
      ctx.strokeStyle = color;
      ctx.beginPath(); ctx.moveTo(x(rider.location), y(rider.location)); ctx.lineTo(x(d), y(d)); ctx.stroke();
    }
    if (state.selected === o.id) {
      ctx.strokeStyle = "#fff"; ctx.strokeRect(x(d) - 7, y(d) - 7, 14, 14);
    }
  }
  for (const r of state.riders.values()) {
    if (!r.location) continue;
    ctx.fillStyle = COLORS[r.status] || COLORS.available;
    ctx.beginPath(); ctx.arc(x(r.location), y(r.location), 4, 0, 2 * Math.PI); ctx.fill();
  }
}

// ---- tables -----------------------------------------------------------------------------

function row(cells, attrs = {}) {
  const tr = document.createElement("tr");
  for (const [k, v] of Object.entries(attrs)) tr.setAttribute(k, v);
  for (const c of cells) {
    const td = document.createElement("td");
    if (c instanceof Node) td.appendChild(c); else td.textContent = c;
    tr.appendChild(td);
  }
  return tr;
}

function button(label, onClick) {
  const b = document.createElement("button");
  b.textContent = label;
  b.addEventListener("click", onClick);
  return b;
}

function renderOrders() {
  const body = $("orders").querySelector("tbody");
  body.replaceChildren();
  const orders = [...state.orders.values()].sort((a, b) => minutesLate(b) - minutesLate(a) || a.placed_at.localeCompare(b.placed_at));
  let late = 0;
  for (const o of orders.slice(0, 200)) {
    const m = minutesLate(o);
    if (m) late += 1;
    const cls = [m ? "late" : "", state.selected === o.id ? "selected" : ""].join(" ").trim();
    body.appendChild(row([short(o.id), o.stage, short(o.rider_id), time(o.eta && o.eta.deliver_at), m ? `${m} min late` : "", button("open", () => select(o.id))],
      { "data-order": o.id, "data-stage": o.stage, "data-rider": o.rider_id || "", class: cls }));
  }
  $("order-count").textContent = state.orders.size;
  $("late-count").textContent = late;
  $("rider-count").textContent = state.riders.size;
}

function renderRiderPickers() {
  const riders = [...state.riders.values()].sort((a, b) => a.name.localeCompare(b.name));
  const fill = (sel, list, first) => {
    const keep = sel.value;
    sel.replaceChildren();
    if (first) sel.appendChild(new Option(first, ""));
    for (const r of list) sel.appendChild(new Option(`${r.name || short(r.id)} (${r.status})`, r.id));
    if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
  };
  const free = riders.filter((r) => r.status === "available" && !r.order_id);
  fill($("reassign-to"), free, "dispatch again (no rider named)");
  fill($("rider-pick"), riders.filter((r) => r.status !== "offline"));
  fill($("rider-to"), free, "dispatch again");
}

async function refreshActors() {
  const view = await api("GET", "/v1/ops/actors");
  const body = $("actors").querySelector("tbody");
  body.replaceChildren(...view.kinds.map((k) => row([k.kind, k.count, `${k.mailbox_now} (${k.mailbox_max})`, k.restarts,
    k.last_failure ? `${short(k.last_failure.id)} at ${time(k.last_failure.at)}` : "—"], { "data-kind": k.kind })));
}

async function refreshAudit() {
  const log = await api("GET", "/v1/ops/audit?limit=50");
  $("audit").querySelector("tbody").replaceChildren(...log.entries.map((e) =>
    row([time(e.at), e.actor, e.action, e.target], { "data-action": e.action, "data-target": e.target })));
}

async function refreshDeadLetters() {
  const dead = await api("GET", "/v1/ops/dead-letters");
  const letters = dead.dead_letters || dead.entries || [];
  $("dead").querySelector("tbody").replaceChildren(...letters.map((d) =>
    row([d.consumer, d.kind, d.error, d.attempts, button("replay", () => act(() => api("POST", `/v1/ops/dead-letters/${d.id}/replay`), refreshDeadLetters))])));
}

// ---- drill-down and actions -------------------------------------------------------------

async function select(id) {
  state.selected = id;
  $("detail-panel").hidden = false;
  $("detail-id").textContent = id;
  $("action-result").textContent = "";
  const [events, dispatch, payment] = await Promise.allSettled([
    api("GET", `/v1/orders/${id}/events`),
    api("GET", `/v1/orders/${id}/dispatch`),
    api("GET", `/v1/orders/${id}/payment`),
  ]);
  const list = events.status === "fulfilled" ? events.value.events || [] : [];
  $("detail-events").replaceChildren(...list.map((e) => {
    const li = document.createElement("li");
    const o = e.order || (e.payload && e.payload.order) || {};
    li.textContent = `v${o.version ?? e.version ?? "?"} ${o.stage ?? e.kind ?? ""} ${time(o.updated_at ?? e.at)}`;
    return li;
  }));
  const attempts = dispatch.status === "fulfilled" ? dispatch.value.attempts : [];
  $("detail-dispatch").querySelector("tbody").replaceChildren(...attempts.map((a) =>
    row([short(a.rider_id), `${Math.round(a.distance_m)} m`, time(a.offered_at), a.outcome])));
  $("detail-payment").textContent = payment.status === "fulfilled" ? JSON.stringify(payment.value, null, 1) : String(payment.reason.message);
}

async function act(action, after) {
  const out = $("action-result");
  try {
    await action();
    out.textContent = "done";
    out.dataset.result = "ok";
  } catch (e) {
    out.textContent = e.message;
    out.dataset.result = "error";
  }
  await Promise.allSettled([loadSnapshot(), refreshAudit(), after ? after() : null]);
  render();
}

function reassign(orderId, riderId) {
  return api("POST", `/v1/ops/orders/${orderId}/reassign`, riderId ? { rider_id: riderId } : {});
}

function wireActions() {
  $("reassign").addEventListener("click", () => act(async () => {
    const updated = await reassign(state.selected, $("reassign-to").value);
    keepOrder(updated);
  }));
  $("move-orders").addEventListener("click", () => act(async () => {
    // A rider carries one order at a time: moving "all its orders" moves that one.
    const rider = state.riders.get($("rider-pick").value);
    if (!rider || !rider.order_id) throw new Error("that rider carries no order");
    keepOrder(await reassign(rider.order_id, $("rider-to").value));
  }));
  $("force-offline").addEventListener("click", () => act(() => api("POST", `/v1/ops/riders/${$("rider-pick").value}/offline`)));
  $("close-restaurant").addEventListener("click", () => act(() =>
    api("PUT", `/v1/restaurants/${$("restaurant-id").value.trim()}/status`, { open: false })));
}

function render() {
  draw();
  renderOrders();
  renderRiderPickers();
}

// ---- start ------------------------------------------------------------------------------

function showLogin() {
  $("console").hidden = true;
  $("login").hidden = false;
}

async function start() {
  $("login").hidden = true;
  $("console").hidden = false;
  try {
    await loadSnapshot();
  } catch (e) {
    setStatus("down", e.message);
    return;
  }
  connect();
  render();
  refreshActors(); refreshAudit(); refreshDeadLetters().catch(() => {});
  setInterval(draw, 250);
  setInterval(() => { renderOrders(); renderRiderPickers(); }, 1000);
  setInterval(() => loadSnapshot().catch(() => {}), 3000);
  setInterval(() => { refreshActors().catch(() => {}); refreshAudit().catch(() => {}); }, 5000);
}

$("login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
  state.token = sessionStorage.getItem(TOKEN_KEY);
  start();
});
wireActions();
state.token = takeToken();
if (state.token) start(); else showLogin();
