// Hand-made SVG bar charts. Each bar has a <title> (hover), the chart an aria-label summary, and
// `data-total` / `data-value` attributes so tests can read what is drawn. A screen reader treats
// the SVG as one image, so every chart comes with a visually hidden table of the same numbers
// (`#<id>-table`): the text alternative a reader can walk row by row.
import { h } from './dom.js';
import { num, t } from './i18n.js';

/**
 * The chart's numbers as a table for screen readers: one row per bar, caption = the title. The
 * hiding is on a wrapper: a table sizes itself to its content and ignores `width: 1px`.
 */
export function dataTable(id, label, data) {
  return h('div', { class: 'sr-only' }, h('table', { id: id + '-table', class: 'chart-table' },
    h('caption', {}, label),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('chart.table.label')), h('th', { scope: 'col' }, t('chart.table.value')))),
    h('tbody', {}, data.map((d) => h('tr', {}, h('th', { scope: 'row' }, d.label), h('td', {}, num(d.value)))))));
}

/**
 * Adds up consecutive runs of `size` bars (the hourly chart on a phone: 72 hours as 12 bars of 6
 * hours, whose labels fit at 360 px). Each run is labelled by its first bar.
 */
export function aggregate(data, size) {
  const out = [];
  for (let i = 0; i < data.length; i += size) {
    const run = data.slice(i, i + size);
    out.push({ label: run[0].label, short: run[0].short, value: run.reduce((s, d) => s + d.value, 0) });
  }
  return out;
}

/**
 * Vertical bars with their data table: `data` is [{label, value, short?}]; `every` labels only
 * every n-th bar on the axis.
 */
export function bars(id, label, data, opts) {
  return [barsSvg(id, label, data, opts), dataTable(id, label, data)];
}

function barsSvg(id, label, data, { every = 1, height = 200, width = 600 } = {}) {
  const W = width, top = 14, bottom = 30, left = 6;
  const max = Math.max(1, ...data.map((d) => d.value));
  const step = (W - left) / Math.max(1, data.length);
  const bw = Math.max(1, step * 0.75);
  const plot = height - top - bottom;
  const total = data.reduce((s, d) => s + d.value, 0);
  const svg = h('svg', { id, class: 'chart', viewBox: `0 0 ${W} ${height}`, role: 'img', 'aria-label': `${label}: ${num(total)}`, 'data-total': total });
  data.forEach((d, i) => {
    const bh = (d.value / max) * plot;
    const x = left + i * step + (step - bw) / 2;
    svg.append(h('g', { class: 'bar', 'data-label': d.label, 'data-value': d.value },
      h('title', {}, `${d.label}: ${num(d.value)}`),
      h('rect', { x: x.toFixed(1), y: (top + plot - bh).toFixed(1), width: bw.toFixed(1), height: Math.max(0, bh).toFixed(1) }),
      data.length <= 12 ? h('text', { x: (x + bw / 2).toFixed(1), y: (top + plot - bh - 3).toFixed(1), class: 'value' }, num(d.value)) : null,
      i % every === 0 ? h('text', { x: Math.max(28, x + bw / 2).toFixed(1), y: height - 10, class: 'axis' }, d.short ?? d.label) : null));
  });
  svg.append(h('line', { x1: 0, x2: W, y1: top + plot, y2: top + plot, class: 'baseline' }));
  return svg;
}

/** Horizontal bars with the label on the left (the responsible load), with their data table. */
export function hbars(id, label, data) {
  return [hbarsSvg(id, label, data), dataTable(id, label, data)];
}

function hbarsSvg(id, label, data) {
  const W = 600, row = 26, labelW = 260;
  const height = Math.max(row, data.length * row) + 4;
  const max = Math.max(1, ...data.map((d) => d.value));
  const total = data.reduce((s, d) => s + d.value, 0);
  const svg = h('svg', { id, class: 'chart hchart', viewBox: `0 0 ${W} ${height}`, role: 'img', 'aria-label': `${label}: ${num(total)}`, 'data-total': total });
  data.forEach((d, i) => {
    const y = i * row + 2;
    const bw = (d.value / max) * (W - labelW - 50);
    svg.append(h('g', { class: 'bar', 'data-label': d.label, 'data-value': d.value },
      h('title', {}, `${d.label}: ${num(d.value)}`),
      h('text', { x: labelW - 6, y: y + row * 0.65, class: 'label' }, d.label.length > 34 ? d.label.slice(0, 33) + '…' : d.label),
      h('rect', { x: labelW, y: y + 4, width: Math.max(0, bw).toFixed(1), height: row - 8 }),
      h('text', { x: (labelW + bw + 4).toFixed(1), y: y + row * 0.65, class: 'value' }, num(d.value))));
  });
  return svg;
}
