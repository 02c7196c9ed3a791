// The hot-spot map: the H3 cells of the `hotspots` view drawn as plain SVG paths over a
// latitude/longitude graticule, fitted to the cells' bounding box. No tiles and no external
// files: the machine running lpm may be offline. Each cell is shaded by its reports (five
// classes, with a legend), carries a <title> (hover) and an aria-label with its figures, and is
// focusable; focusing or tapping one shows its figures under the map (a phone has no hover).
// The same figures are in a visually hidden table for screen readers. `data-cell` /
// `data-reports` let tests read what is drawn.
import { h } from './dom.js';
import { num, t } from './i18n.js';

export const CLASSES = 5;
const W = 600;

/** The rings of a GeoJSON Polygon or MultiPolygon, as arrays of [lon, lat]. */
export function rings(geometry) {
  if (!geometry) return [];
  if (geometry.type === 'Polygon') return geometry.coordinates;
  if (geometry.type === 'MultiPolygon') return geometry.coordinates.flat();
  return [];
}

/**
 * The upper bound of each shade class for a largest cell of `max` reports: class i holds
 * counts up to `bounds[i]` (repeated bounds, when `max` < 5, collapse in the legend).
 */
export function bounds(max) {
  return [...Array(CLASSES).keys()].map((i) => Math.max(1, Math.ceil((max * (i + 1)) / CLASSES)));
}

function shade(reports, bs) {
  const i = bs.findIndex((b) => reports <= b);
  return i < 0 ? CLASSES - 1 : i;
}

/** A tick step of 1, 2 or 5 times a power of ten giving about four lines over `span` degrees. */
function step(span) {
  const raw = Math.max(span, 1e-6) / 4;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw);
}

function degrees(v, pos, neg) {
  const digits = Math.max(0, Math.min(4, -Math.floor(Math.log10(Math.abs(v) || 1)) + 2));
  return `${num(Math.abs(v), digits)}°${v < 0 ? neg : pos}`;
}

/**
 * The map as [svg, legend, detail line, hidden table]. `cells` is `{cell: {reports,
 * open_cases, open_minor_cases}}` (what the stream and `GET /api/v1/views/hotspots` give);
 * `shapes` is `{cell: geometry}` from the GeoJSON. Cells without a shape yet are listed in
 * the table but not drawn.
 */
export function hotspotMap(id, cells, shapes) {
  const keys = Object.keys(cells).sort((a, b) => cells[b].reports - cells[a].reports || (a < b ? -1 : 1));
  const drawn = keys.filter((k) => rings(shapes[k]).length);
  // a map spanning more than half the world has crossed the antimeridian: unwrap it eastwards
  const lons = drawn.flatMap((k) => rings(shapes[k]).flat().map((p) => p[0]));
  const wrap = lons.length && Math.max(...lons) - Math.min(...lons) > 180;
  const lonOf = (x) => (wrap && x < 0 ? x + 360 : x);
  let box = { w: -81.1, e: -75.2, s: -5.0, n: 1.5 }; // mainland Ecuador when there is no cell
  if (drawn.length) {
    const pts = drawn.flatMap((k) => rings(shapes[k]).flat());
    const xs = pts.map((p) => lonOf(p[0]));
    const ys = pts.map((p) => p[1]);
    box = { w: Math.min(...xs), e: Math.max(...xs), s: Math.min(...ys), n: Math.max(...ys) };
    // a margin around the cells, at least ~1 km so a single cell is not edge to edge
    const pad = Math.max(0.01, (box.e - box.w) * 0.08, (box.n - box.s) * 0.08);
    box = { w: box.w - pad, e: box.e + pad, s: box.s - pad, n: box.n + pad };
  }
  // equirectangular, with longitudes shortened by cos(latitude) at the box's middle
  const k = Math.cos((((box.n + box.s) / 2) * Math.PI) / 180);
  const spanX = (box.e - box.w) * k;
  const spanY = box.n - box.s;
  const height = Math.round(Math.min(Math.max((W * spanY) / spanX, 240), 600));
  const scale = Math.min(W / spanX, height / spanY);
  const ox = (W - spanX * scale) / 2;
  const oy = (height - spanY * scale) / 2;
  const X = (lon) => ox + (lonOf(lon) - box.w) * k * scale;
  const Y = (lat) => oy + (box.n - lat) * scale;

  const max = Math.max(0, ...keys.map((c) => cells[c].reports));
  const bs = bounds(max);
  const total = keys.reduce((s, c) => s + cells[c].reports, 0);
  const label = t('map.aria', { n: num(keys.length), reports: num(total), max: num(max) });
  const svg = h('svg', { id, class: 'map', viewBox: `0 0 ${W} ${height}`, role: 'group', 'aria-label': label, 'data-cells': drawn.length, 'data-total': total });
  const grid = h('g', { class: 'graticule', 'aria-hidden': 'true' });
  const sy = step(spanY);
  for (let lat = Math.ceil(box.s / sy) * sy; lat <= box.n; lat += sy) {
    const y = Y(lat).toFixed(1);
    grid.append(h('line', { x1: 0, x2: W, y1: y, y2: y }), h('text', { x: 4, y: (Y(lat) - 3).toFixed(1) }, degrees(lat, 'N', 'S')));
  }
  const sx = step(box.e - box.w);
  for (let lon = Math.ceil(box.w / sx) * sx; lon <= box.e; lon += sx) {
    const x = X(lon).toFixed(1);
    const shown = lon > 180 ? lon - 360 : lon;
    grid.append(h('line', { x1: x, x2: x, y1: 0, y2: height }), h('text', { x: (X(lon) + 3).toFixed(1), y: height - 4 }, degrees(shown, 'E', 'W')));
  }
  svg.append(h('rect', { class: 'map-frame', x: 0, y: 0, width: W, height }), grid);
  const detail = h('p', { class: 'map-detail hint', id: id + '-detail', 'aria-live': 'polite' }, drawn.length ? t('map.hint') : t('map.empty'));
  for (const c of drawn) {
    const f = cells[c];
    const text = t('map.cell', { cell: c, reports: num(f.reports), open: num(f.open_cases), minors: num(f.open_minor_cases) });
    const d = rings(shapes[c]).map((r) => 'M' + r.map((p) => `${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join('L') + 'Z').join('');
    const show = () => { detail.textContent = text; };
    svg.append(h('g', { class: `cell heat-${shade(f.reports, bs)}`, 'data-cell': c, 'data-reports': f.reports, tabindex: 0, role: 'img', 'aria-label': text, onfocus: show, onclick: show, onmouseenter: show },
      h('title', {}, text), h('path', { d })));
  }
  const seen = new Set();
  const swatches = [];
  bs.forEach((b, i) => {
    if (seen.has(b)) return;
    const lo = i === 0 ? 1 : bs[i - 1] + 1;
    seen.add(b);
    if (lo > b) return;
    swatches.push(h('li', {}, h('span', { class: `swatch heat-${i}`, 'aria-hidden': 'true' }), lo === b ? num(b) : `${num(lo)}–${num(b)}`));
  });
  const legend = h('figure', { class: 'map-legend', id: id + '-legend' },
    h('figcaption', { 'data-i18n': 'map.legend' }), h('ul', {}, swatches));
  const table = h('div', { class: 'sr-only' }, h('table', { id: id + '-table' },
    h('caption', {}, label),
    h('thead', {}, h('tr', {}, ['map.table.cell', 'map.table.reports', 'map.table.open', 'map.table.minors'].map((key) => h('th', { scope: 'col', 'data-i18n': key })))),
    h('tbody', {}, keys.map((c) => h('tr', {}, h('th', { scope: 'row' }, c),
      h('td', {}, num(cells[c].reports)), h('td', {}, num(cells[c].open_cases)), h('td', {}, num(cells[c].open_minor_cases)))))));
  return [svg, legend, detail, table];
}
