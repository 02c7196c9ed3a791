// Small DOM helpers: build elements without innerHTML (no markup injection, CSP-friendly).
import { t } from './i18n.js';

const SVG_NS = 'http://www.w3.org/2000/svg';
const SVG_TAGS = new Set(['svg', 'g', 'rect', 'text', 'title', 'line', 'path', 'desc']);

/** h('button', {class: 'x', onclick: fn, 'data-i18n': 'case.save'}, child, 'text', [more]) */
export function h(tag, attrs = {}, ...children) {
  const el = SVG_TAGS.has(tag) ? document.createElementNS(SVG_NS, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value' && 'value' in el && !SVG_TAGS.has(tag)) el.value = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  if (attrs && attrs['data-i18n']) el.textContent = t(attrs['data-i18n']);
  for (const a of ['placeholder', 'aria-label', 'title']) {
    const key = attrs && attrs['data-i18n-' + a];
    if (key) el.setAttribute(a, t(key));
  }
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Says `message` to screen readers (and shows it in the status line). */
export function announce(message) {
  const live = document.getElementById('live');
  if (live) live.textContent = message;
}

/** A labelled form control with its error slot: {wrap, input, error}. */
export function field(name, labelKey, control, hintKey) {
  const id = 'f-' + name.replace(/\./g, '-');
  control.id = id;
  control.name = name;
  const error = h('p', { class: 'field-error', id: id + '-error', 'data-error-for': name, role: 'alert' });
  const hint = hintKey ? h('p', { class: 'hint', id: id + '-hint', 'data-i18n': hintKey }) : null;
  control.setAttribute('aria-describedby', [hint ? id + '-hint' : null, id + '-error'].filter(Boolean).join(' '));
  const wrap = h('div', { class: 'field', 'data-field': name },
    h('label', { for: id, 'data-i18n': labelKey }), control, hint, error);
  return { wrap, input: control, error };
}

/** Shows `message` next to the field `name` inside `form` (false when there is no such field). */
export function showFieldError(form, name, message) {
  const slot = form.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
  if (!slot) return false;
  slot.textContent = message;
  const input = form.querySelector(`[name="${CSS.escape(name)}"]`);
  if (input) input.setAttribute('aria-invalid', 'true');
  return true;
}

/** Clears every field error in `form`. */
export function clearErrors(form) {
  for (const e of form.querySelectorAll('.field-error')) e.textContent = '';
  for (const i of form.querySelectorAll('[aria-invalid]')) i.removeAttribute('aria-invalid');
}

/** A <select> of `values`, labelled through `prefix + value`; `any` adds an empty first option. */
export function select(values, prefix, { any, selected } = {}) {
  const s = h('select');
  if (any) s.append(h('option', { value: '', 'data-i18n': any }));
  for (const v of values) s.append(h('option', { value: v, 'data-i18n': prefix + v }));
  if (selected !== undefined) s.value = selected;
  return s;
}

/** A status/priority/tag badge. */
export function badge(kind, value) {
  return h('span', { class: `badge ${kind}-${value}`, 'data-i18n': kind + '.' + value });
}
