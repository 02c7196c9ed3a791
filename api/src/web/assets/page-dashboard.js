// The dashboard: KPI tiles, charts and the hot-spot map fed live from the view stream (see
// live.js), with the current tick, the time since the last message and since the tick last
// moved. The map's figures come from the stream; a cell's outline (which the stream does not
// carry) is fetched once from `GET /api/v1/views/hotspots?format=geojson` when a cell first
// appears, then kept.
import { api } from './api.js';
import { h, fill } from './dom.js';
import { hotspotMap } from './map.js';
import { t, num } from './i18n.js';
import { bars, hbars, aggregate } from './charts.js';
import { subscribe, reconnect } from './live.js';
import { STATUSES, AGE_BANDS } from './page-cases.js';
import { GENDERS, PRIORITIES } from './page-report.js';

const TILES = ['total_reports', 'open_cases', 'unassigned_open_cases', 'open_minor_cases', 'closed_cases', 'found_alive', 'actions_total', 'mean_hours_to_close'];
const HOURS_SHOWN = 72;
// Below this width the 72 hourly bars are drawn as 12 bars of 6 hours on a narrow canvas, so
// the labels stay legible and apart on a 360 px phone (72 bars scaled down are unreadable).
const NARROW = '(max-width: 640px)';

function secondsSince(ms) {
  return ms ? Math.max(0, Math.round((Date.now() - ms) / 1000)) : null;
}

function chartCard(id, titleKey) {
  return h('section', { class: 'card chart-card', 'aria-labelledby': id + '-h' },
    h('h2', { id: id + '-h', 'data-i18n': titleKey }), h('div', { class: 'chart-slot', id: id + '-slot' }));
}

export function render(main) {
  const tiles = h('div', { class: 'tiles', id: 'kpi-tiles' }, TILES.map((k) =>
    h('div', { class: 'tile', 'data-kpi': k }, h('span', { class: 'tile-label', 'data-i18n': 'kpi.' + k }), h('span', { class: 'tile-value' }, '—'))));
  const mode = h('span', { id: 'live-mode', class: 'live-mode' });
  const tick = h('span', { id: 'live-tick' }, '—');
  const fresh = h('span', { id: 'live-freshness' }, '—');
  const statusLine = h('p', { class: 'live-status', id: 'live-status' },
    mode, ' · ', h('span', { 'data-i18n': 'dashboard.tick' }), ' ', tick, ' · ', fresh, ' ',
    h('button', { type: 'button', class: 'link-button', id: 'live-reconnect', onclick: reconnect, 'data-i18n': 'dashboard.reconnect' }));
  const charts = h('div', { class: 'charts' },
    chartCard('chart-hourly', 'chart.hourly'),
    chartCard('chart-age_group', 'chart.age_group'),
    chartCard('chart-gender', 'chart.gender'),
    chartCard('chart-hour_of_day', 'chart.hour_of_day'),
    chartCard('chart-cases_by_status', 'chart.cases_by_status'),
    chartCard('chart-open_by_priority', 'chart.open_by_priority'),
    chartCard('chart-responsible_load', 'chart.responsible_load'));
  const mapCard = h('section', { class: 'card map-card', id: 'hotspot-card', 'aria-labelledby': 'hotspot-map-h' },
    h('h2', { id: 'hotspot-map-h', 'data-i18n': 'map.title' }), h('div', { class: 'map-slot', id: 'hotspot-map-slot' }));
  fill(main, h('h1', { 'data-i18n': 'dashboard.title' }), statusLine, tiles, mapCard, charts);

  // cell outlines by key; `missing` is set when the engine runs without the view
  const shapes = {};
  let fetching = null;
  let missing = false;
  const fetchShapes = () => {
    fetching = api('/api/v1/views/hotspots?format=geojson').then(({ data }) => {
      for (const f of data.features || []) shapes[f.id] = f.geometry;
    }, (err) => {
      if (err.status === 404) missing = true;
    }).finally(() => {
      fetching = null;
      if (lastViews) drawMap(lastViews.hotspots || {});
    });
  };
  // redrawn only when what it shows changed, so a focused cell keeps its focus between ticks
  let drawnAs = null;
  const drawMap = (cells) => {
    const slot = document.getElementById('hotspot-map-slot');
    if (!slot) return;
    if (missing) {
      fill(slot, h('p', { class: 'hint', 'data-i18n': 'map.unavailable' }));
      return;
    }
    if (!fetching && Object.keys(cells).some((c) => !shapes[c])) fetchShapes();
    const as = JSON.stringify([cells, Object.keys(shapes).length, document.documentElement.lang]);
    if (as === drawnAs) return;
    drawnAs = as;
    const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.cell : null;
    fill(slot, hotspotMap('hotspot-map', cells, shapes));
    const again = focused && slot.querySelector(`[data-cell="${CSS.escape(focused)}"]`);
    if (again) again.focus();
  };

  let last = null;
  const drawStatus = (st) => {
    mode.textContent = t('live.' + st.mode);
    mode.className = 'live-mode live-' + st.mode;
    tick.textContent = st.tick === null ? '—' : num(st.tick);
    const m = secondsSince(st.lastMessageAt);
    const k = secondsSince(st.tickAt);
    fresh.textContent = m === null ? '' : t('dashboard.freshness', { message: num(m), tick: num(k ?? 0) });
  };

  let lastViews = null;
  const draw = (v, st) => {
    last = st;
    lastViews = v;
    drawStatus(st);
    for (const tile of tiles.children) {
      const key = tile.dataset.kpi;
      const value = v.kpi[key];
      tile.querySelector('.tile-value').textContent = value === null || value === undefined ? '—'
        : key === 'mean_hours_to_close' ? t('dashboard.hours', { n: num(value, 1) }) : num(value);
    }
    const put = (id, svg) => fill(document.getElementById(id + '-slot') || h('div'), svg);
    const pick = (obj, keys, prefix) => keys.map((k) => ({ label: t(prefix + k), value: obj[k] || 0 }));
    // reports per hour over the last three days, ending at the current hour
    const nowHour = Math.floor(Date.now() / 3600000) * 3600;
    const hourly = [];
    for (let i = HOURS_SHOWN - 1; i >= 0; i -= 1) {
      const s = nowHour - i * 3600;
      const d = new Date(s * 1000);
      hourly.push({ label: d.toLocaleString(document.documentElement.lang, { weekday: 'short', hour: '2-digit', minute: '2-digit' }),
        short: d.toLocaleString(document.documentElement.lang, { weekday: 'short', hour: '2-digit' }), value: v.hourly[String(s)] || 0 });
    }
    const narrowNow = window.matchMedia(NARROW).matches;
    const hourlyHeading = document.getElementById('chart-hourly-h');
    if (hourlyHeading) {
      hourlyHeading.dataset.i18n = narrowNow ? 'chart.hourly_6h' : 'chart.hourly';
      hourlyHeading.textContent = t(hourlyHeading.dataset.i18n);
    }
    if (narrowNow) {
      put('chart-hourly', bars('chart-hourly', t('chart.hourly_6h'), aggregate(hourly, 6), { every: 3, width: 360, height: 220 }));
    } else {
      put('chart-hourly', bars('chart-hourly', t('chart.hourly'), hourly, { every: 12, width: 1200, height: 220 }));
    }
    put('chart-age_group', bars('chart-age_group', t('chart.age_group'), pick(v.age_group, AGE_BANDS, 'age_band.')));
    put('chart-gender', bars('chart-gender', t('chart.gender'), pick(v.gender, GENDERS, 'gender.')));
    const hours = [...Array(24).keys()].map((hr) => ({ label: String(hr).padStart(2, '0') + 'h', value: v.hour_of_day[String(hr)] || 0 }));
    put('chart-hour_of_day', bars('chart-hour_of_day', t('chart.hour_of_day'), hours, { every: 3 }));
    put('chart-cases_by_status', bars('chart-cases_by_status', t('chart.cases_by_status'), pick(v.cases_by_status, STATUSES, 'status.')));
    put('chart-open_by_priority', bars('chart-open_by_priority', t('chart.open_by_priority'), pick(v.open_by_priority, PRIORITIES, 'priority.')));
    const load = [...v.responsible_load].sort((a, b) => b.open_cases - a.open_cases || a.id - b.id).slice(0, 12)
      .map((r) => ({ label: `${r.full_name} · ${r.agency}`, value: r.open_cases }));
    put('chart-responsible_load', hbars('chart-responsible_load', t('chart.responsible_load'), load));
    drawMap(v.hotspots || {});
  };

  const unsubscribe = subscribe(draw);
  const clock = setInterval(() => last && drawStatus(last), 1000);
  // turning a tablet or resizing across the breakpoint redraws the hourly chart for the width
  const narrow = window.matchMedia(NARROW);
  const onWidth = () => lastViews && draw(lastViews, last);
  narrow.addEventListener('change', onWidth);
  return () => {
    narrow.removeEventListener('change', onWidth);
    clearInterval(clock);
    unsubscribe();
  };
}
