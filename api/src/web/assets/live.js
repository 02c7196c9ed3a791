// The live view state behind the dashboard. With a cookie session it follows the WebSocket
// `/api/v1/stream?topics=views,hotspots` (the views and the hot-spot cells, which the server
// filters by the reader's threshold): a snapshot replaces everything, each diff is applied exactly
// (rows are counted, a -1 removes what a +1 added), and a dropped socket reconnects with
// `since=<last tick>` so the server sends only what was missed (or a fresh snapshot). Browsers
// cannot put a Bearer header on a WebSocket, so a reader's token polls `GET /api/v1/views` and
// `GET /api/v1/views/hotspots`.
import { api, token } from './api.js';

/** Rows as a multiset: `JSON.stringify([view, key, value])` → count. */
const rows = new Map();
const listeners = new Set();
export const status = { mode: 'idle', tick: null, lastMessageAt: null, tickAt: null, messages: 0, reconnects: 0 };
let socket = null;
let timer = null;
let stopped = true;
let backoff = 1000;
/** The last `GET /api/v1/views` answer, in polling mode. */
let polled = null;

function rowKey(r) {
  return JSON.stringify([r.view, r.key, r.value]);
}

function add(r, n) {
  const k = rowKey(r);
  const c = (rows.get(k) || 0) + n;
  if (c === 0) rows.delete(k);
  else rows.set(k, c);
}

function notify() {
  for (const f of listeners) f(views(), status);
}

function setTick(tick) {
  if (tick !== status.tick) status.tickAt = Date.now();
  status.tick = tick;
}

/** Applies one stream message (exported for the unit of reasoning: snapshot, then diffs). */
export function apply(msg) {
  status.lastMessageAt = Date.now();
  status.messages += 1;
  if (msg.type === 'snapshot') {
    rows.clear();
    for (const r of msg.rows) add(r, 1);
    setTick(msg.tick);
  } else if (msg.type === 'diff') {
    if (status.tick !== null && msg.tick <= status.tick) return; // already applied
    for (const c of msg.changes) add(c.row, c.diff);
    setTick(msg.tick);
  } else if (msg.type === 'heartbeat') {
    setTick(Math.max(status.tick ?? msg.tick, msg.tick));
  }
  notify();
}

/** The views in the shape of `GET /api/v1/views` (`kpi.mean_hours_to_close` computed). */
export function views() {
  if (polled) return polled;
  const v = { age_group: {}, gender: {}, hour_of_day: {}, hourly: {}, cases_by_status: {}, open_by_priority: {}, kpi: {}, row_counts: {}, responsible_load: [], hotspots: {} };
  for (const [k, n] of rows) {
    if (n <= 0) continue;
    const [view, key, value] = JSON.parse(k);
    if (view === 'responsible_load') v.responsible_load.push({ id: Number(key), ...value });
    else if (v[view]) v[view][key] = value;
  }
  const k = v.kpi;
  k.mean_hours_to_close = k.cases_with_close_time ? k.close_millis_sum / k.cases_with_close_time / 3600000 : null;
  return v;
}

async function poll() {
  try {
    const { data } = await api('/api/v1/views');
    // the cells are not in the all-views document; a 404 is an engine without the view
    const cells = await api('/api/v1/views/hotspots').then((r) => r.data.value, () => ({}));
    polled = { ...data.views, hotspots: cells };
    setTick(data.tick);
    status.lastMessageAt = Date.now();
    status.messages += 1;
    status.mode = 'polling';
  } catch {
    status.mode = 'offline';
  }
  notify();
  if (!stopped) timer = setTimeout(poll, 3000);
}

function connect() {
  const since = status.tick !== null ? `&since=${status.tick}` : '';
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/v1/stream?topics=views,hotspots${since}`;
  status.mode = status.reconnects ? 'reconnecting' : 'connecting';
  notify();
  const ws = new WebSocket(url);
  socket = ws;
  ws.addEventListener('open', () => {
    status.mode = 'live';
    backoff = 1000;
    notify();
  });
  ws.addEventListener('message', (e) => {
    try {
      apply(JSON.parse(e.data));
    } catch {
      /* a frame we do not understand is skipped */
    }
  });
  ws.addEventListener('close', () => {
    if (socket !== ws) return;
    socket = null;
    if (stopped) return;
    status.mode = 'reconnecting';
    status.reconnects += 1;
    notify();
    timer = setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 15000);
  });
}

/** Starts following (idempotent) and calls `f(views, status)` on every change; returns stop. */
export function subscribe(f) {
  listeners.add(f);
  if (stopped) {
    stopped = false;
    if (token()) poll();
    else connect();
  } else if (status.tick !== null) {
    f(views(), status);
  }
  return () => {
    listeners.delete(f);
    if (listeners.size === 0) stop();
  };
}

function stop() {
  stopped = true;
  clearTimeout(timer);
  if (socket) {
    const ws = socket;
    socket = null;
    ws.close();
  }
  status.mode = 'idle';
  // the next subscriber starts from a fresh snapshot (it may be another user)
  rows.clear();
  polled = null;
  Object.assign(status, { tick: null, lastMessageAt: null, tickAt: null, messages: 0, reconnects: 0 });
}

/** Drops the socket as a network failure would (the dashboard's "reconnect" button). */
export function reconnect() {
  if (socket) socket.close();
}
