// Analytics PDFs: pick a date range and a language, then download any of the five reports.
import { downloadWithToken } from './api.js';
import { h, fill, field, clearErrors, showFieldError, announce } from './dom.js';
import { t, getLang, LANGS, errorMessage } from './i18n.js';

export const KINDS = ['operational', 'demographic', 'hourly', 'sensitive', 'hotspots'];

function isoDate(d) {
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 10);
}

export function render(main) {
  const today = new Date();
  const from = field('from', 'reports.from', h('input', { type: 'date', required: true, value: isoDate(new Date(today.getTime() - 6 * 86400000)) }));
  const to = field('to', 'reports.to', h('input', { type: 'date', required: true, value: isoDate(today) }));
  const lang = field('lang', 'reports.language', h('select', {}, LANGS.map((l) => h('option', { value: l, 'data-i18n': 'lang.' + l }))));
  lang.input.value = getLang();
  const form = h('form', { id: 'reports-form', class: 'card filters', novalidate: true }, from.wrap, to.wrap, lang.wrap);
  const list = h('ul', { class: 'downloads', id: 'report-links' });
  const update = () => {
    clearErrors(form);
    const [f, tt, l] = [from.input.value, to.input.value, lang.input.value];
    let ok = true;
    if (!f) ok = !showFieldError(form, 'from', t('validation.required'));
    if (!tt) ok = !showFieldError(form, 'to', t('validation.required')) && ok;
    if (ok && f > tt) ok = !showFieldError(form, 'to', t('reports.order'));
    fill(list, KINDS.map((k) => h('li', {},
      ok ? h('a', { class: 'button', 'data-report': k, href: `/api/v1/reports/${k}.pdf?from=${f}&to=${tt}&lang=${l}`, download: `${k}-${f}-${tt}.pdf`,
        onclick: (e) => downloadWithToken(e).catch((err) => announce(errorMessage(err))) }, t('reports.kind.' + k))
        : h('span', { class: 'button disabled', 'aria-disabled': 'true' }, t('reports.kind.' + k)),
      ' ', h('span', { class: 'hint' }, t('reports.about.' + k)))));
  };
  form.addEventListener('input', update);
  form.addEventListener('change', update);
  form.addEventListener('submit', (e) => e.preventDefault());
  fill(main, h('h1', { 'data-i18n': 'reports.title' }), h('p', { class: 'lead', 'data-i18n': 'reports.intro' }), form,
    h('section', { class: 'card', 'aria-labelledby': 'dl-h' }, h('h2', { id: 'dl-h', 'data-i18n': 'reports.downloads' }), list));
  update();
}
