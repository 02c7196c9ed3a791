// Responsible contacts and their load; admins link each contact to the user who works as it
// (auto-assignment gives a contact cases while that user's session is seen).
import { api } from './api.js';
import { h, fill, announce } from './dom.js';
import { t, num, errorMessage } from './i18n.js';

export async function render(main, ctx) {
  const admin = ctx.me && ctx.me.role === 'admin';
  let list;
  let users = [];
  try {
    [list, users] = await Promise.all([
      api('/api/v1/responsibles').then((r) => r.data),
      admin ? api('/api/v1/users').then((r) => r.data) : Promise.resolve([]),
    ]);
  } catch (err) {
    fill(main, h('h1', { 'data-i18n': 'contacts.title' }), h('p', { class: 'error', role: 'alert' }, errorMessage(err)));
    return;
  }
  const auto = list.auto_assign;
  const about = auto
    ? h('p', { class: 'notice', id: 'auto-assign-note' }, t('contacts.auto_on', { cap: num(auto.cap), ttl: num(auto.session_ttl_s) }))
    : h('p', { class: 'hint', id: 'auto-assign-note', 'data-i18n': 'contacts.auto_off' });
  const userCell = (c) => {
    if (!admin) return c.user || '—';
    const sel = h('select', { 'data-contact': c.id, 'aria-label': t('contacts.user_of', { name: c.full_name }) },
      h('option', { value: '' }, t('contacts.no_user')),
      users.map((u) => h('option', { value: u.name, selected: c.user === u.name }, u.name)));
    sel.addEventListener('change', async () => {
      sel.disabled = true;
      try {
        await api(`/api/v1/responsibles/${c.id}/user`, { method: 'PUT', body: { user: sel.value || null } });
        announce(t('contacts.linked'));
        ctx.rerender();
      } catch (err) {
        announce(errorMessage(err));
        sel.disabled = false;
      }
    });
    return sel;
  };
  const rows = list.items.map((c) => h('tr', { 'data-id': c.id },
    h('td', { 'data-label': t('contacts.name') }, c.full_name),
    h('td', { 'data-label': t('contacts.agency') }, c.agency),
    h('td', { 'data-label': t('contacts.active') }, t(c.active ? 'contacts.yes' : 'contacts.no')),
    h('td', { 'data-label': t('contacts.open_cases'), class: 'num' }, num(c.open_cases)),
    h('td', { 'data-label': t('contacts.user') }, userCell(c))));
  const table = h('div', { class: 'table-wrap' }, h('table', { class: 'contacts', id: 'contacts' },
    h('caption', { class: 'sr-only', 'data-i18n': 'contacts.title' }),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col', 'data-i18n': 'contacts.name' }),
      h('th', { scope: 'col', 'data-i18n': 'contacts.agency' }),
      h('th', { scope: 'col', 'data-i18n': 'contacts.active' }),
      h('th', { scope: 'col', class: 'num', 'data-i18n': 'contacts.open_cases' }),
      h('th', { scope: 'col', 'data-i18n': 'contacts.user' }))),
    h('tbody', {}, rows)));
  fill(main, h('h1', { 'data-i18n': 'contacts.title' }), about,
    list.items.length ? table : h('p', { class: 'notice', 'data-i18n': 'case.no_active' }));
}
