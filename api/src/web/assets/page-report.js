// File a report: every person field of `POST /api/v1/reports`, the case priority, and an optional
// first responsible and action. The same rules as the server are checked before sending; errors
// the server still finds are shown next to the field its `{error, field}` names.
import { api } from './api.js';
import { h, fill, field, select, clearErrors, showFieldError, announce } from './dom.js';
import { t, errorMessage } from './i18n.js';

export const GENDERS = ['female', 'male', 'other', 'unknown'];
export const PRIORITIES = ['low', 'medium', 'high', 'critical'];
export const ACTION_TYPES = ['note', 'search', 'call', 'sighting'];

/** At most `max` decimals (the server keeps 6). */
function decimals(text, max) {
  const m = /\.(\d+)$/.exec(text.trim());
  return !m || m[1].length <= max;
}

/** The client-side rules; returns [[field, message], ...]. */
export function validate(v) {
  const errs = [];
  const need = (f, max) => {
    const s = (v[f] || '').trim();
    if (!s) errs.push([f, t('validation.required')]);
    else if ([...s].length > max) errs.push([f, t('validation.max_chars', { max })]);
  };
  const opt = (f, max) => {
    const s = (v[f] || '').trim();
    if (s && [...s].length > max) errs.push([f, t('validation.max_chars', { max })]);
  };
  need('full_name', 200);
  if (v.age !== '') {
    const n = Number(v.age);
    if (!Number.isInteger(n) || n < 0 || n > 150) errs.push(['age', t('validation.age')]);
  }
  if (!GENDERS.includes(v.gender)) errs.push(['gender', t('validation.required')]);
  if (!v.last_seen_at) errs.push(['last_seen_at', t('validation.required')]);
  need('last_seen_place', 255);
  for (const [f, lim] of [['latitude', 90], ['longitude', 180]]) {
    if (v[f] === '') continue;
    const n = Number(v[f]);
    if (!Number.isFinite(n) || Math.abs(n) > lim) errs.push([f, t('validation.range', { min: -lim, max: lim })]);
    else if (!decimals(v[f], 6)) errs.push([f, t('validation.decimals')]);
  }
  opt('description', 10000);
  opt('reporter_name', 200);
  opt('reporter_phone', 40);
  opt('first_action.notes', 10000);
  if ((v['first_action.notes'] || '').trim() && !v['first_action.action_type']) errs.push(['first_action.action_type', t('validation.action_type')]);
  return errs;
}

/** The request body from the form values. */
export function body(v) {
  const b = {
    full_name: v.full_name.trim(),
    gender: v.gender,
    last_seen_at: v.last_seen_at,
    last_seen_place: v.last_seen_place.trim(),
    priority: v.priority || 'medium',
  };
  if (v.age !== '') b.age = Number(v.age);
  if (v.latitude !== '') b.latitude = Number(v.latitude);
  if (v.longitude !== '') b.longitude = Number(v.longitude);
  for (const f of ['description', 'reporter_name', 'reporter_phone']) if (v[f].trim()) b[f] = v[f].trim();
  if (v.responsible_id) b.responsible_id = Number(v.responsible_id);
  if (v['first_action.action_type']) {
    b.first_action = { action_type: v['first_action.action_type'] };
    if (v['first_action.notes'].trim()) b.first_action.notes = v['first_action.notes'].trim();
  }
  return b;
}

function nowLocal() {
  const d = new Date(Date.now() - new Date().getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

export async function render(main, ctx) {
  if (!ctx.me.can_write) {
    fill(main, h('h1', { 'data-i18n': 'report.title' }), h('p', { class: 'notice', 'data-i18n': 'error.read_only' }));
    return;
  }
  let responsibles = [];
  try {
    responsibles = (await api('/api/v1/responsibles?active=true')).data.items;
  } catch {
    responsibles = [];
  }
  const respSelect = h('select', {}, h('option', { value: '', 'data-i18n': 'report.no_responsible' }),
    responsibles.map((r) => h('option', { value: r.id }, `${r.full_name} · ${r.agency}`)));
  const F = {
    full_name: field('full_name', 'person.full_name', h('input', { type: 'text', maxlength: 200, required: true, autocomplete: 'off' })),
    age: field('age', 'person.age', h('input', { type: 'number', min: 0, max: 150, step: 1, inputmode: 'numeric' }), 'report.age_hint'),
    gender: field('gender', 'person.gender', select(GENDERS, 'gender.', { any: 'report.choose' })),
    last_seen_at: field('last_seen_at', 'person.last_seen_at', h('input', { type: 'datetime-local', required: true, value: nowLocal() }), 'report.last_seen_hint'),
    last_seen_place: field('last_seen_place', 'person.last_seen_place', h('input', { type: 'text', maxlength: 255, required: true })),
    latitude: field('latitude', 'person.latitude', h('input', { type: 'text', inputmode: 'decimal', placeholder: '-0.180653' }), 'report.coordinates_hint'),
    longitude: field('longitude', 'person.longitude', h('input', { type: 'text', inputmode: 'decimal', placeholder: '-78.467838' })),
    description: field('description', 'person.description', h('textarea', { rows: 4, maxlength: 10000 })),
    reporter_name: field('reporter_name', 'person.reporter_name', h('input', { type: 'text', maxlength: 200 })),
    reporter_phone: field('reporter_phone', 'person.reporter_phone', h('input', { type: 'tel', maxlength: 40, autocomplete: 'off' })),
    priority: field('priority', 'case.priority', select(PRIORITIES, 'priority.', { selected: 'medium' })),
    responsible_id: field('responsible_id', 'report.responsible', respSelect),
    action_type: field('first_action.action_type', 'report.first_action', select(ACTION_TYPES, 'action.', { any: 'report.no_action' })),
    action_notes: field('first_action.notes', 'action.notes', h('textarea', { rows: 3, maxlength: 10000 })),
  };
  const status = h('p', { class: 'form-status', role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'primary', 'data-i18n': 'report.submit' });
  const form = h('form', { id: 'report-form', class: 'card', novalidate: true },
    h('fieldset', {}, h('legend', { 'data-i18n': 'report.person' }),
      F.full_name.wrap, h('div', { class: 'row' }, F.age.wrap, F.gender.wrap)),
    h('fieldset', {}, h('legend', { 'data-i18n': 'report.last_seen' }),
      F.last_seen_at.wrap, F.last_seen_place.wrap, h('div', { class: 'row' }, F.latitude.wrap, F.longitude.wrap), F.description.wrap),
    h('fieldset', {}, h('legend', { 'data-i18n': 'report.reporter' }),
      h('div', { class: 'row' }, F.reporter_name.wrap, F.reporter_phone.wrap)),
    h('fieldset', {}, h('legend', { 'data-i18n': 'report.case' }),
      h('div', { class: 'row' }, F.priority.wrap, F.responsible_id.wrap), F.action_type.wrap, F.action_notes.wrap),
    status, submit);

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    status.textContent = '';
    const v = Object.fromEntries(new FormData(form).entries());
    const errs = validate(v);
    if (errs.length) {
      for (const [f, m] of errs) showFieldError(form, f, m);
      status.textContent = t('validation.fix_fields');
      form.querySelector('[aria-invalid="true"]')?.focus();
      return;
    }
    submit.disabled = true;
    try {
      const r = await api('/api/v1/reports', { method: 'POST', body: body(v) });
      const id = r.data && r.data.case ? r.data.case.id : Number((r.location || '').split('/').pop());
      announce(t('report.created', { id }));
      location.hash = `#/cases/${id}`;
    } catch (err) {
      if (!(err.field && showFieldError(form, err.field, errorMessage(err)))) status.textContent = errorMessage(err);
      else {
        status.textContent = t('validation.fix_fields');
        form.querySelector('[aria-invalid="true"]')?.focus();
      }
    } finally {
      submit.disabled = false;
    }
  });
  fill(main, h('h1', { 'data-i18n': 'report.title' }), h('p', { class: 'lead', 'data-i18n': 'report.intro' }), form);
  F.full_name.input.focus();
}
