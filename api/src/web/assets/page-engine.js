// For data engineers: `GET /api/v1/engine`, polled every 2 s: tick, tick rate, freshness,
// per-source lag, upsert state sizes, arrangement sizes, checkpoints and this start's recovery. Says "not available" while the
// server has no such route (404) or the call fails.
import { api } from './api.js';
import { h, fill } from './dom.js';
import { t, num } from './i18n.js';

function table(id, captionKey, heads, rows) {
  return h('div', { class: 'table-wrap' }, h('table', { id, class: 'plain' },
    h('caption', { 'data-i18n': captionKey }),
    h('thead', {}, h('tr', {}, heads.map((k) => h('th', { scope: 'col', 'data-i18n': k })))),
    h('tbody', {}, rows.length ? rows.map((r) => h('tr', {}, r.map((c, i) => h(i ? 'td' : 'th', i ? { class: 'num' } : { scope: 'row' }, c))))
      : h('tr', {}, h('td', { colspan: heads.length, 'data-i18n': 'engine.empty' })))));
}

function ms(seconds) {
  return seconds === null || seconds === undefined ? '—' : t('engine.ms', { n: num(seconds * 1000, 1) });
}

export function draw(e) {
  const u = e.upsert || {};
  const stats = [
    ['engine.tick', num(e.tick ?? 0)],
    ['engine.workers', num(e.workers ?? 0)],
    ['engine.ticks_per_second', num(e.ticks_per_second ?? 0, 2)],
    ['engine.freshness_p50', ms(e.freshness_seconds && e.freshness_seconds.p50)],
    ['engine.freshness_p99', ms(e.freshness_seconds && e.freshness_seconds.p99)],
  ];
  const sources = [];
  for (const s of e.sources || []) {
    sources.push([s.source, t('engine.status.' + (s.status === 'live' ? 'live' : 'other'), { status: s.status }), num(s.lag ?? 0)]);
    for (const d of s.detail || []) sources.push([`  ${s.source} · ${d.name}`, '', num(d.lag ?? 0)]);
  }
  // the API's names (`applied`, `duplicates`, `stale`, `unknown_deletes`), not others
  const counters = ['applied', 'duplicates', 'stale', 'unknown_deletes'].map((k) => ['engine.upsert.' + k, num(u[k] ?? 0)]);
  const c = e.checkpoint;
  const mib = (b) => t('engine.mib', { n: num((b ?? 0) / 1048576, 1) });
  const checkpoint = c ? [
    ['engine.ckpt.newest', c.newest ? t('engine.ckpt.number', { n: num(c.newest.number), seq: num((c.newest.position || {}).log_seq ?? 0) }) : t('engine.ckpt.none')],
    ['engine.ckpt.age', t('engine.seconds', { n: num(c.age_seconds ?? 0, 0) })],
    ['engine.ckpt.size', c.newest ? `${mib(c.newest.bytes)} · ${num(c.newest.entries)} · ${ms((c.newest.duration_ms ?? 0) / 1000)}` : '—'],
    ['engine.ckpt.pending', num(c.pending_changes ?? 0)],
    ['engine.ckpt.outcomes', `${num(c.taken ?? 0)} / ${num(c.skipped ?? 0)} / ${num(c.failed ?? 0)}`],
    ['engine.ckpt.recovery', t('engine.ckpt.recovered', { s: num(c.recovery_seconds ?? 0, 2), restored: num(c.restored_entries ?? 0), replayed: num(c.replayed_records ?? 0), fallbacks: num(c.fallbacks ?? 0) })],
    ['engine.ckpt.log', `${num(c.log_segments ?? 0)} · ${mib(c.log_bytes)}`],
  ] : [];
  return [
    h('div', { class: 'tiles' }, stats.map(([k, v]) => h('div', { class: 'tile' }, h('span', { class: 'tile-label', 'data-i18n': k }), h('span', { class: 'tile-value' }, v)))),
    table('engine-sources', 'engine.sources', ['engine.source', 'engine.state', 'engine.lag'], sources),
    table('engine-upsert', 'engine.upsert_tables', ['engine.table', 'engine.rows'], (u.tables || []).map((r) => [r.table, num(r.rows)])),
    h('dl', { class: 'facts', id: 'engine-counters' }, counters.map(([k, v]) => [h('dt', { 'data-i18n': k }), h('dd', {}, v)])),
    table('engine-arrangements', 'engine.arrangements', ['engine.arrangement', 'engine.operators', 'engine.records', 'engine.batches'],
      (e.arrangements || []).map((a) => [a.name, num(a.operators), num(a.records), num(a.batches)])),
    ...(checkpoint.length ? [h('h2', { 'data-i18n': 'engine.ckpt.title' }),
      h('dl', { class: 'facts', id: 'engine-checkpoint' }, checkpoint.map(([k, v]) => [h('dt', { 'data-i18n': k }), h('dd', {}, v)]))] : []),
  ];
}

export function render(main) {
  const body = h('div', { id: 'engine-body', 'aria-live': 'polite' }, h('p', { 'data-i18n': 'app.loading' }));
  const updated = h('p', { class: 'hint', id: 'engine-updated' });
  fill(main, h('h1', { 'data-i18n': 'engine.title' }), h('p', { class: 'lead', 'data-i18n': 'engine.intro' }), updated, body);
  let timer = null;
  let stopped = false;
  const poll = async () => {
    try {
      const { data } = await api('/api/v1/engine');
      body.setAttribute('aria-live', 'off'); // a table every 2 s is too chatty for a screen reader
      fill(body, draw(data));
      updated.textContent = t('engine.updated', { time: new Date().toLocaleTimeString(document.documentElement.lang) });
    } catch (err) {
      fill(body, h('p', { class: 'notice', id: 'engine-unavailable' }, t('engine.unavailable'), ' ',
        h('span', { class: 'hint' }, err.status ? `(HTTP ${err.status})` : '')));
    }
    if (!stopped) timer = setTimeout(poll, 2000);
  };
  poll();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
