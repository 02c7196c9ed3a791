// One case: the person, status and priority (sent with the `version` read, a 409 is shown and
// the case reloaded), assignment to an active contact, logging an action, adding a sighting,
// the timeline of actions, sightings and responsible history (reloaded when the stream says
// the case changed), and the case PDF in the current language.
import { api, downloadWithToken, token } from './api.js';
import { h, fill, field, select, badge, clearErrors, showFieldError, announce } from './dom.js';
import { t, num, dateTime, wallClock, getLang, errorMessage } from './i18n.js';
import { PRIORITIES, ACTION_TYPES } from './page-report.js';
import { STATUSES } from './page-cases.js';

function dl(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(([, v]) => v !== null && v !== undefined && v !== '')
    .map(([k, v]) => [h('dt', { 'data-i18n': k }), h('dd', {}, v)]));
}

/**
 * An action's note: the one lpm wrote itself comes as data (`note`: a status change or an
 * assignment, see `LedgerNote` in service/src/sor/note.rs) and is shown in the reader's
 * language; a typed note (`notes`) is shown as typed.
 */
function actionNote(a) {
  const n = a.note;
  // "Asignación: NAME"; the history line next to it says "Asignado a NAME"
  if (n && n.kind === 'assignment') return n.mode === 'auto' ? t('case.auto_assigned', { name: n.responsible_name }) : n.responsible_name;
  if (n && n.kind === 'status_change') return t('status.' + n.from) + ' → ' + t('status.' + n.to);
  return a.notes || null;
}

/**
 * One sighting: where, the source, then the rest; the API leaves the place, the reporter, the
 * description and the coordinates out for read-only access.
 */
function sightingNode(s) {
  const coords = s.latitude && s.longitude ? ` (${s.latitude}, ${s.longitude})` : '';
  const reporter = [s.reporter_name, s.reporter_phone].filter(Boolean).join(' · ');
  return [
    h('span', { class: 'event-type' }, s.place ? t('timeline.sighting', { place: s.place }) : t('timeline.sighting_unplaced')), coords,
    ' · ', h('span', { class: 'source', 'data-i18n': 'sighting.source.' + s.source }),
    s.description ? [': ', h('span', { class: 'notes' }, s.description)] : null,
    reporter ? [' · ', h('span', { class: 'by' }, reporter)] : null];
}

/** Actions, sightings (at the wall-clock time they were seen) and responsible history, newest first. */
export function timeline(detail, names) {
  const items = [];
  for (const s of detail.sightings || []) {
    items.push({ at: s.seen_at, label: wallClock(s.seen_at), kind: 'sighting', node: sightingNode(s) });
  }
  for (const a of detail.actions) {
    items.push({ at: a.created_at, kind: 'action', node: [
      h('span', { class: 'event-type', 'data-i18n': 'action.' + a.action_type }),
      actionNote(a) ? [': ', h('span', { class: 'notes' }, actionNote(a))] : null,
      a.responsible_name ? [' · ', h('span', { class: 'by' }, a.responsible_name)] : null] });
  }
  for (const r of detail.history) {
    const who = names.get(r.responsible_id) || '#' + r.responsible_id;
    items.push({ at: r.assigned_at, kind: 'assigned', node: [t('timeline.assigned', { name: who })] });
    if (r.unassigned_at) items.push({ at: r.unassigned_at, kind: 'unassigned', node: [t('timeline.unassigned', { name: who })] });
  }
  items.sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
  return h('ol', { class: 'timeline', id: 'timeline' }, items.map((i) =>
    h('li', { class: 'event event-' + i.kind }, h('time', { datetime: i.at }, i.label || dateTime(i.at)), ' ', i.node)));
}

export async function render(main, ctx) {
  const id = Number(ctx.params[0]);
  const notice = h('p', { id: 'case-notice', class: 'notice', role: 'status', hidden: true });
  let detail;
  let contacts = [];
  let autoAssign = null;
  const load = async () => {
    detail = (await api(`/api/v1/cases/${id}`)).data;
  };
  try {
    await Promise.all([load(), api('/api/v1/responsibles').then((r) => { contacts = r.data.items; autoAssign = r.data.auto_assign; }, () => {})]);
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

    const forms = writer ? [publishForm(c), statusForm(c), assignForm(c), actionForm(), sightingForm()] : [];
    const sightings = (detail.sightings || []).length;
    const history = h('section', { class: 'card', 'aria-labelledby': 'timeline-h' },
      h('h2', { id: 'timeline-h', 'data-i18n': 'case.timeline' }),
      h('p', { class: 'hint', id: 'sighting-count' }, t('case.sightings', { n: num(sightings) })),
      timeline(detail, names));
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
      autoAssign ? h('p', { class: 'hint', id: 'cap-note' }, t('case.cap_note', { cap: num(autoAssign.cap) })) : null,
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

  function sightingForm() {
    const seen = field('seen_at', 'sighting.seen_at', h('input', { type: 'datetime-local' }));
    const place = field('place', 'sighting.place', h('input', { type: 'text', maxlength: 255 }));
    const lat = field('latitude', 'sighting.latitude', h('input', { type: 'number', step: '0.000001', min: -90, max: 90 }));
    const lon = field('longitude', 'sighting.longitude', h('input', { type: 'number', step: '0.000001', min: -180, max: 180 }));
    const desc = field('description', 'sighting.description', h('textarea', { rows: 2, maxlength: 10000 }));
    const who = field('reporter_name', 'sighting.reporter_name', h('input', { type: 'text', maxlength: 200 }));
    const phone = field('reporter_phone', 'sighting.reporter_phone', h('input', { type: 'tel', maxlength: 40 }));
    const form = h('form', { id: 'sighting-form', class: 'card', novalidate: true },
      h('h2', { 'data-i18n': 'sighting.add' }), seen.wrap, place.wrap, lat.wrap, lon.wrap, desc.wrap, who.wrap, phone.wrap,
      h('button', { type: 'submit', class: 'primary', 'data-i18n': 'sighting.add_button' }));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      clearErrors(form);
      if (!seen.input.value) return void showFieldError(form, 'seen_at', t('validation.required'));
      if (!place.input.value.trim()) return void showFieldError(form, 'place', t('validation.required'));
      if (!lat.input.value !== !lon.input.value) {
        return void showFieldError(form, lat.input.value ? 'longitude' : 'latitude', t('sighting.both_coordinates'));
      }
      const body = { seen_at: seen.input.value, place: place.input.value.trim() };
      if (lat.input.value) Object.assign(body, { latitude: Number(lat.input.value), longitude: Number(lon.input.value) });
      for (const [k, f] of [['description', desc], ['reporter_name', who], ['reporter_phone', phone]]) {
        if (f.input.value.trim()) body[k] = f.input.value.trim();
      }
      write(form, `/api/v1/cases/${id}/sightings`, 'POST', () => body, 'sighting.added');
    });
    return form;
  }

  draw();
  // another client's write (a sighting from the public page, an action): only the timeline
  // is redrawn, so a form being filled in keeps its values and the version it was read at (a
  // stale write still answers 409)
  let shown = detail.tick;
  follow(id, async (tick) => {
    if (tick <= Math.max(shown, detail.tick)) return;
    const fresh = (await api(`/api/v1/cases/${id}`)).data;
    shown = fresh.tick;
    const old = document.getElementById('timeline');
    const count = document.getElementById('sighting-count');
    if (!old || !count) return;
    old.replaceWith(timeline(fresh, names));
    count.textContent = t('case.sightings', { n: num((fresh.sightings || []).length) });
  });
}

/**
 * Calls `changed(tick)` when the stream (`topics=cases`) names the case. Only with a cookie
 * session: browsers cannot send a Bearer token on a WebSocket. The socket closes once the page
 * is left.
 */
function follow(id, changed) {
  if (token() || typeof WebSocket === 'undefined') return;
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(`${proto}//${location.host}/api/v1/stream?topics=cases`);
  ws.addEventListener('message', (e) => {
    if (!document.getElementById('timeline')) return void ws.close();
    try {
      const msg = JSON.parse(e.data);
      if (msg.type === 'cases' && msg.changed.includes(id)) changed(msg.tick).catch(() => {});
    } catch {
      /* a frame we do not understand is skipped */
    }
  });
  window.addEventListener('hashchange', () => ws.close(), { once: true });
}
