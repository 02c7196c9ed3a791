// Hand-made SVG bar charts. Each bar has a <title> (hover and screen readers), the chart an
// aria-label summary, and `data-total` / `data-value` attributes so tests can read what is drawn.
import { h } from './dom.js';
import { num } from './i18n.js';

/** Vertical bars: `data` is [{label, value}]; `every` labels only every n-th bar on the axis. */
export function bars(id, label, data, { every = 1, height = 200, width = 600 } = {}) {
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

/** Horizontal bars with the label on the left: for the responsible load. */
export function hbars(id, label, data) {
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
