// One case: the person, status and priority (sent with the `version` read, a 409 is shown and
// the case reloaded), assignment to an active contact, logging an action, the timeline of
// actions and responsible history, and the case PDF in the current language.
import { api, downloadWithToken } from './api.js';
import { h, fill, field, select, badge, clearErrors, showFieldError, announce } from './dom.js';
import { t, num, dateTime, wallClock, getLang, errorMessage } from './i18n.js';
import { PRIORITIES, ACTION_TYPES } from './page-report.js';
import { STATUSES } from './page-cases.js';

function dl(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(([, v]) => v !== null && v !== undefined && v !== '')
    .map(([k, v]) => [h('dt', { 'data-i18n': k }), h('dd', {}, v)]));
}

/**
 * The ledger writes its own notes for status changes (`open -> in_progress`) and assignments
 * (`Asignado a / assigned to NAME`); they are shown in the reader's language. Typed notes are
 * shown as typed.
 */
function actionNote(a) {
  const n = a.notes;
  if (!n) return null;
  const change = a.action_type === 'status_change' && /^(\w+) -> (\w+)$/.exec(n);
  if (change) return t('status.' + change[1]) + ' → ' + t('status.' + change[2]);
  const prefix = 'Asignado a / assigned to ';
  // "Asignación: NAME"; the history line next to it says "Asignado a NAME"
  if (a.action_type === 'assignment' && n.startsWith(prefix)) return n.slice(prefix.length);
  return n;
}

/** Actions and responsible history, newest first. */
export function timeline(detail, names) {
  const items = [];
  for (const a of detail.actions) {
    items.push({ at: a.created_at, kind: 'action', node: [
      h('span', { class: 'event-type', 'data-i18n': 'action.' + a.action_type }),
      a.notes ? [': ', h('span', { class: 'notes' }, actionNote(a))] : null,
      a.responsible_name ? [' · ', h('span', { class: 'by' }, a.responsible_name)] : null] });
  }
  for (const r of detail.history) {
    const who = names.get(r.responsible_id) || '#' + r.responsible_id;
    items.push({ at: r.assigned_at, kind: 'assigned', node: [t('timeline.assigned', { name: who })] });
    if (r.unassigned_at) items.push({ at: r.unassigned_at, kind: 'unassigned', node: [t('timeline.unassigned', { name: who })] });
  }
  items.sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
  return h('ol', { class: 'timeline', id: 'timeline' }, items.map((i) =>
    h('li', { class: 'event event-' + i.kind }, h('time', { datetime: i.at }, dateTime(i.at)), ' ', i.node)));
}

export async function render(main, ctx) {
  const id = Number(ctx.params[0]);
  const notice = h('p', { id: 'case-notice', class: 'notice', role: 'status', hidden: true });
  let detail;
  let contacts = [];
  const load = async () => {
    detail = (await api(`/api/v1/cases/${id}`)).data;
  };
  try {
    await Promise.all([load(), api('/api/v1/responsibles').then((r) => { contacts = r.data.items; }, () => {})]);
  } catch (err) {
    fill(main, h('h1', {}, t('case.title', { id })), h('p', { class: 'error', role: 'alert' },
      err.status === 404 ? t('error.case_not_found') : errorMessage(err)));
    return;
  }
  const names = new Map(contacts.map((c) => [c.id, c.full_name]));

  const say = (key, vars, cls = 'notice') => {
    notice.hidden = false;
    notice.className = cls;
    notice.textContent = t(key, vars);
    announce(notice.textContent);
  };

  const draw = () => {
    const c = detail.case;
    const p = c.person;
    const writer = ctx.me.can_write;
    const header = h('div', { class: 'case-head' },
      h('h1', { id: 'case-title' }, t('case.title', { id: c.id }), p ? [' · ', h('span', { class: 'name' }, p.full_name)] : null),
      h('p', { class: 'badges' }, badge('status', c.status), ' ', badge('priority', c.priority),
        c.unassigned ? [' ', h('span', { class: 'tag tag-unassigned', 'data-i18n': 'case.unassigned' })] : null,
        c.minor ? [' ', h('span', { class: 'tag tag-minor', 'data-i18n': 'case.minor' })] : null),
      h('p', {}, h('a', { class: 'button', id: 'case-pdf', href: `/api/v1/cases/${c.id}/report.pdf?lang=${getLang()}`,
        download: `case-${c.id}.pdf`, onclick: (e) => downloadWithToken(e).catch((err) => say('error.download', { message: errorMessage(err) }, 'error')),
        'data-i18n': 'case.download_pdf' })));
    const facts = h('section', { class: 'card', 'aria-labelledby': 'facts-h' },
      h('h2', { id: 'facts-h', 'data-i18n': 'case.details' }),
      dl([
        ['case.opened_at', dateTime(c.opened_at)],
        ['case.closed_at', c.closed_at ? dateTime(c.closed_at) : null],
        ['case.age_band', t('age_band.' + c.age_band)],
        ['person.gender', t('gender.' + c.gender)],
        ['case.responsible', c.responsible ? `${c.responsible.full_name} · ${c.responsible.agency}` : t('case.unassigned')],
        ['responsible.phone', c.responsible && c.responsible.phone],
        ['responsible.email', c.responsible && c.responsible.email],
        ['case.version', num(c.version)],
      ]),
      p ? [h('h3', { 'data-i18n': 'report.person' }), dl([
        ['person.full_name', p.full_name],
        ['person.age', p.age === null ? t('person.age_unknown') : num(p.age)],
        ['person.last_seen_at', wallClock(p.last_seen_at)],
        ['person.last_seen_place', p.last_seen_place],
        ['person.coordinates', p.latitude && p.longitude ? `${p.latitude}, ${p.longitude}` : null],
        ['person.description', p.description],
        ['person.reporter_name', p.reporter_name],
        ['person.reporter_phone', p.reporter_phone],
        ['person.reported_at', dateTime(p.reported_at)],
      ])] : h('p', { class: 'hint', 'data-i18n': 'case.no_personal_data' }));

    const forms = writer ? [publishForm(c), statusForm(c), assignForm(c), actionForm()] : [];
    const history = h('section', { class: 'card', 'aria-labelledby': 'timeline-h' },
      h('h2', { id: 'timeline-h', 'data-i18n': 'case.timeline' }), timeline(detail, names));
    fill(main, header, notice, h('div', { class: 'case-grid' }, h('div', {}, facts, history), forms.length ? h('div', {}, forms) : null));
  };

  const write = async (form, path, method, bodyOf, okKey) => {
    clearErrors(form);
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    try {
      const r = await api(path, { method, body: bodyOf() });
      if (r.status === 202) await load();
      else detail = r.data;
      draw();
      say(okKey);
    } catch (err) {
      if (err.status === 409) {
        await load();
        draw();
        say('case.conflict', { version: err.currentVersion ?? '?' }, 'error');
      } else if (!(err.field && showFieldError(form, err.field, errorMessage(err)))) {
        say('error.generic', { message: errorMessage(err) }, 'error');
      }
    } finally {
      button.disabled = false;
    }
  };

  /** Publish or unpublish: the public page (its link shown, to share) and the poster PDF. */
  function publishForm(c) {
    const form = h('form', { id: 'publish-form', class: 'card', novalidate: true },
      h('h2', { 'data-i18n': 'publish.title' }),
      h('p', { class: 'hint', 'data-i18n': c.public ? 'publish.is_public' : 'publish.not_public' }),
      c.public && c.public_url ? [
        h('p', {}, h('a', { id: 'public-url', href: c.public_url, target: '_blank', rel: 'noopener noreferrer' }, c.public_url)),
        h('p', {}, h('a', { class: 'button', id: 'case-poster', href: `/api/v1/cases/${c.id}/poster.pdf?lang=${getLang()}`,
          download: `poster-${c.id}.pdf`, onclick: (e) => downloadWithToken(e).catch((err) => say('error.download', { message: errorMessage(err) }, 'error')),
          'data-i18n': 'publish.poster' }))] : null,
      h('button', { type: 'submit', class: c.public ? '' : 'primary', id: 'publish-toggle',
        'data-i18n': c.public ? 'publish.unpublish' : 'publish.publish' }));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      write(form, `/api/v1/cases/${c.id}`, 'PATCH', () => ({ version: c.version, public: !c.public }),
        c.public ? 'publish.unpublished' : 'publish.published');
    });
    return form;
  }

  function statusForm(c) {
    const st = field('status', 'case.status', select(STATUSES, 'status.', { selected: c.status }));
    const pr = field('priority', 'case.priority', select(PRIORITIES, 'priority.', { selected: c.priority }));
    const form = h('form', { id: 'status-form', class: 'card', novalidate: true },
      h('h2', { 'data-i18n': 'case.change_status' }), st.wrap, pr.wrap,
      h('button', { type: 'submit', class: 'primary', 'data-i18n': 'case.save' }));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const body = { version: c.version };
      if (st.input.value !== c.status) body.status = st.input.value;
      if (pr.input.value !== c.priority) body.priority = pr.input.value;
      if (!body.status && !body.priority) {
        showFieldError(form, 'status', t('case.nothing_changed'));
        return;
      }
      write(form, `/api/v1/cases/${c.id}`, 'PATCH', () => body, 'case.saved');
    });
    return form;
  }

  function assignForm(c) {
    const active = contacts.filter((r) => r.active);
    const sel = h('select', {}, h('option', { value: '', 'data-i18n': 'report.choose' }),
      active.map((r) => h('option', { value: r.id, selected: c.responsible && c.responsible.id === r.id },
        `${r.full_name} · ${r.agency} (${t('case.open_load', { n: num(r.open_cases) })})`)));
    const f = field('responsible_id', 'case.responsible', sel);
    const form = h('form', { id: 'assign-form', class: 'card', novalidate: true },
      h('h2', { 'data-i18n': 'case.assign' }), active.length ? f.wrap : h('p', { class: 'hint', 'data-i18n': 'case.no_active' }),
      h('button', { type: 'submit', class: 'primary', disabled: !active.length, 'data-i18n': 'case.assign_button' }));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      clearErrors(form);
      if (!sel.value) {
        showFieldError(form, 'responsible_id', t('validation.required'));
        return;
      }
      write(form, `/api/v1/cases/${c.id}/assignment`, 'POST',
        () => ({ version: c.version, responsible_id: Number(sel.value) }), 'case.assigned');
    });
    return form;
  }

  function actionForm() {
    const type = field('action_type', 'action.type', select(ACTION_TYPES, 'action.', { any: 'report.choose' }));
    const notes = field('notes', 'action.notes', h('textarea', { rows: 3, maxlength: 10000 }));
    const form = h('form', { id: 'action-form', class: 'card', novalidate: true },
      h('h2', { 'data-i18n': 'case.log_action' }), type.wrap, notes.wrap,
      h('button', { type: 'submit', class: 'primary', 'data-i18n': 'case.log_button' }));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      clearErrors(form);
      if (!type.input.value) {
        showFieldError(form, 'action_type', t('validation.required'));
        return;
      }
      if ([...notes.input.value].length > 10000) {
        showFieldError(form, 'notes', t('validation.max_chars', { max: 10000 }));
        return;
      }
      const body = { action_type: type.input.value };
      if (notes.input.value.trim()) body.notes = notes.input.value.trim();
      write(form, `/api/v1/cases/${id}/actions`, 'POST', () => body, 'case.action_logged');
    });
    return form;
  }

  draw();
}
