// The case list: filters, text search (people only), sorting and paging, kept in the hash
// (`#/cases?status=open&page=2`) so a filtered list can be bookmarked and the back button works.
import { api } from './api.js';
import { h, fill, field, select, badge } from './dom.js';
import { t, num, dateTime, errorMessage } from './i18n.js';
import { GENDERS, PRIORITIES } from './page-report.js';

export const STATUSES = ['open', 'in_progress', 'found_alive', 'found_deceased', 'closed'];
export const AGE_BANDS = ['0-11', '12-17', '18-29', '30-44', '45-59', '60+', 'unknown'];
const SORTS = ['opened_at', 'id', 'priority', 'status', 'age'];
const PER_PAGE = 25;

export async function render(main, ctx) {
  const query = new URLSearchParams(ctx.params[0] || '');
  const personal = ctx.me.sees_personal_data;
  const F = {
    status: field('status', 'case.status', select(STATUSES, 'status.', { any: 'filter.any', selected: query.get('status') || '' })),
    priority: field('priority', 'case.priority', select(PRIORITIES, 'priority.', { any: 'filter.any', selected: query.get('priority') || '' })),
    age_band: field('age_band', 'case.age_band', select(AGE_BANDS, 'age_band.', { any: 'filter.any', selected: query.get('age_band') || '' })),
    gender: field('gender', 'person.gender', select(GENDERS, 'gender.', { any: 'filter.any', selected: query.get('gender') || '' })),
    sort: field('sort', 'filter.sort', select(SORTS, 'sort.', { selected: query.get('sort') || 'opened_at' })),
  };
  const check = (name, key) => h('label', { class: 'check' },
    h('input', { type: 'checkbox', name, value: 'true', checked: query.get(name) === 'true' }), h('span', { 'data-i18n': key }));
  const q = personal ? field('q', 'filter.search', h('input', { type: 'search', value: query.get('q') || '', 'data-i18n-placeholder': 'filter.search_hint' })) : null;
  const form = h('form', { id: 'case-filters', class: 'filters card', role: 'search' },
    q && q.wrap, F.status.wrap, F.priority.wrap, F.age_band.wrap, F.gender.wrap, F.sort.wrap,
    h('div', { class: 'checks' }, check('unassigned', 'filter.unassigned'), check('minor', 'filter.minors')),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary', 'data-i18n': 'filter.apply' }),
      h('a', { href: '#/cases', class: 'button', 'data-i18n': 'filter.clear' })));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const next = new URLSearchParams();
    for (const [k, v] of new FormData(form).entries()) if (String(v).trim()) next.set(k, String(v).trim());
    if (next.get('sort') === 'opened_at') next.delete('sort');
    location.hash = '#/cases' + (next.toString() ? '?' + next : '');
  });

  const results = h('section', { id: 'case-results', 'aria-live': 'polite', 'aria-busy': 'true' }, h('p', { 'data-i18n': 'app.loading' }));
  fill(main, h('h1', { 'data-i18n': 'cases.title' }), form, results);

  const page = Math.max(1, Number(query.get('page')) || 1);
  const apiQuery = new URLSearchParams();
  for (const k of ['status', 'priority', 'age_band', 'gender', 'q', 'sort']) if (query.get(k)) apiQuery.set(k, query.get(k));
  if (query.get('unassigned') === 'true') apiQuery.set('unassigned', 'true');
  if (query.get('minor') === 'true') apiQuery.set('minor', 'true');
  apiQuery.set('page', page);
  apiQuery.set('per_page', PER_PAGE);
  let data;
  try {
    data = (await api('/api/v1/cases?' + apiQuery)).data;
  } catch (err) {
    fill(results, h('p', { class: 'error', role: 'alert' }, errorMessage(err)));
    results.removeAttribute('aria-busy');
    return;
  }
  const pages = Math.max(1, Math.ceil(data.total / data.per_page));
  const go = (p) => {
    const next = new URLSearchParams(query);
    next.set('page', p);
    location.hash = '#/cases?' + next;
  };
  const rows = data.items.map((c) => {
    const cls = ['case-row', c.unassigned ? 'unassigned' : '', c.minor ? 'minor' : ''].filter(Boolean).join(' ');
    return h('tr', { class: cls, 'data-case-id': c.id },
      h('td', { 'data-label': t('case.id') }, h('a', { href: `#/cases/${c.id}` }, '#' + c.id)),
      personal ? h('td', { 'data-label': t('person.full_name'), class: 'name' }, c.person ? c.person.full_name : '—') : null,
      h('td', { 'data-label': t('case.age_band') }, t('age_band.' + c.age_band), c.minor ? [' ', h('span', { class: 'tag tag-minor', 'data-i18n': 'case.minor' })] : null),
      h('td', { 'data-label': t('person.gender') }, t('gender.' + c.gender)),
      h('td', { 'data-label': t('case.status') }, badge('status', c.status)),
      h('td', { 'data-label': t('case.priority') }, badge('priority', c.priority)),
      h('td', { 'data-label': t('case.opened_at') }, dateTime(c.opened_at)),
      h('td', { 'data-label': t('case.responsible') },
        c.responsible ? c.responsible.full_name : h('span', { class: 'tag tag-unassigned', 'data-i18n': 'case.unassigned' })),
      h('td', { 'data-label': t('cases.sightings'), class: 'num sightings' }, num(c.sightings)));
  });
  const table = h('div', { class: 'table-wrap' }, h('table', { class: 'cases' },
    h('caption', { class: 'sr-only', 'data-i18n': 'cases.title' }),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col', 'data-i18n': 'case.id' }),
      personal ? h('th', { scope: 'col', 'data-i18n': 'person.full_name' }) : null,
      h('th', { scope: 'col', 'data-i18n': 'case.age_band' }),
      h('th', { scope: 'col', 'data-i18n': 'person.gender' }),
      h('th', { scope: 'col', 'data-i18n': 'case.status' }),
      h('th', { scope: 'col', 'data-i18n': 'case.priority' }),
      h('th', { scope: 'col', 'data-i18n': 'case.opened_at' }),
      h('th', { scope: 'col', 'data-i18n': 'case.responsible' }),
      h('th', { scope: 'col', class: 'num', 'data-i18n': 'cases.sightings' }))),
    h('tbody', {}, rows)));
  const pager = h('nav', { class: 'pager', 'data-i18n-aria-label': 'cases.paging' },
    h('button', { type: 'button', disabled: page <= 1, onclick: () => go(page - 1), 'data-i18n': 'cases.previous' }),
    h('span', { id: 'page-info' }, t('cases.page_of', { page: num(page), pages: num(pages), total: num(data.total) })),
    h('button', { type: 'button', disabled: page >= pages, onclick: () => go(page + 1), 'data-i18n': 'cases.next' }));
  fill(results, data.items.length ? table : h('p', { class: 'notice', 'data-i18n': 'cases.none' }), pager);
  results.removeAttribute('aria-busy');
}
