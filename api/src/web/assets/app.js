// The shell: language, session, navigation and the hash router. Each page module exports
// `render(main, ctx)` and may return a cleanup function (timers, sockets).
import { api, setToken, token } from './api.js';
import { h, fill, announce } from './dom.js';
import { initialLang, setLang, getLang, t, translate, errorMessage } from './i18n.js';
import * as signin from './page-signin.js';
import * as report from './page-report.js';
import * as cases from './page-cases.js';
import * as caseDetail from './page-case.js';
import * as dashboard from './page-dashboard.js';
import * as reports from './page-reports.js';
import * as engine from './page-engine.js';
import * as contacts from './page-contacts.js';

// [hash pattern, page, the nav entry it highlights, the key of its document title]
const ROUTES = [
  [/^#\/signin$/, signin, 'signin', 'auth.title'],
  [/^#\/dashboard$/, dashboard, 'dashboard', 'nav.dashboard'],
  [/^#\/cases\/(\d+)$/, caseDetail, 'cases', 'case.title'],
  [/^#\/cases(?:\?(.*))?$/, cases, 'cases', 'nav.cases'],
  [/^#\/report$/, report, 'report', 'nav.report'],
  [/^#\/reports$/, reports, 'reports', 'nav.reports'],
  [/^#\/engine$/, engine, 'engine', 'nav.engine'],
  [/^#\/contacts$/, contacts, 'contacts', 'nav.contacts'],
];

/**
 * The tab title names the view (`Casos · LPM`, `Caso 12 · LPM`) so tabs, history and screen
 * readers (which announce it on navigation) tell the views apart; it follows the language.
 */
function setTitle(key, vars) {
  document.title = `${t(key, vars)} · LPM`;
}

const ctx = { me: null, rerender: () => route() };
let cleanup = null;

/** Who is signed in: `{user, role, via, can_write, sees_personal_data}`, or null. */
async function loadSession() {
  try {
    ctx.me = (await api('/api/v1/session')).data;
  } catch {
    if (token()) setToken(null); // a revoked or mistyped token
    ctx.me = null;
  }
  return ctx.me;
}

function updateShell() {
  const me = ctx.me;
  const nav = document.getElementById('nav');
  nav.hidden = !me;
  document.getElementById('nav-toggle').hidden = !me;
  document.getElementById('sign-out').hidden = !me;
  for (const li of nav.querySelectorAll('[data-needs="write"]')) li.hidden = !(me && me.can_write);
  for (const li of nav.querySelectorAll('[data-needs="personal"]')) li.hidden = !(me && me.sees_personal_data);
  const who = document.getElementById('who');
  fill(who, me ? [me.user, ' · ', h('span', { 'data-i18n': 'role.' + me.role })] : []);
}

async function route() {
  if (cleanup) {
    try {
      cleanup();
    } catch {
      /* a page that failed to clean up must not block navigation */
    }
    cleanup = null;
  }
  const hash = location.hash || '#/dashboard';
  if (!ctx.me && hash !== '#/signin') {
    location.replace('#/signin');
    return;
  }
  if (ctx.me && hash === '#/signin') {
    location.replace('#/dashboard');
    return;
  }
  updateShell();
  const found = ROUTES.map(([re, page, nav, title]) => [hash.match(re), page, nav, title]).find(([m]) => m);
  const main = document.getElementById('main');
  for (const a of document.querySelectorAll('#nav a')) {
    if (found && a.getAttribute('href') === '#/' + found[2]) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  closeNav();
  if (!found) {
    setTitle('error.not_found');
    fill(main, h('h1', { 'data-i18n': 'error.not_found' }), h('p', {}, h('a', { href: '#/dashboard', 'data-i18n': 'nav.dashboard' })));
    return;
  }
  const [match, page, , title] = found;
  ctx.params = match.slice(1);
  setTitle(title, { id: ctx.params[0] });
  try {
    cleanup = (await page.render(main, ctx)) || null;
  } catch (e) {
    fill(main, h('h1', { 'data-i18n': 'error.title' }), h('p', { class: 'error', role: 'alert' }, errorMessage(e)));
  }
}

function closeNav() {
  const toggle = document.getElementById('nav-toggle');
  toggle.setAttribute('aria-expanded', 'false');
  document.getElementById('nav').classList.remove('open');
}

async function signOut() {
  if (token()) setToken(null);
  else {
    try {
      await api('/api/v1/session', { method: 'DELETE' });
    } catch {
      /* signed out anyway */
    }
  }
  ctx.me = null;
  announce(t('auth.signed_out'));
  location.hash = '#/signin'; // the hashchange routes
}

/** Called by the sign-in page once a cookie or token works. */
ctx.signedIn = async () => {
  await loadSession();
  location.hash = '#/dashboard';
};

async function boot() {
  const langSelect = document.getElementById('lang-select');
  setLang(initialLang(), { remember: false });
  langSelect.value = getLang();
  langSelect.addEventListener('change', () => {
    setLang(langSelect.value);
    route(); // pages format numbers and dates at render time
  });
  const toggle = document.getElementById('nav-toggle');
  toggle.addEventListener('click', () => {
    const open = toggle.getAttribute('aria-expanded') !== 'true';
    toggle.setAttribute('aria-expanded', String(open));
    document.getElementById('nav').classList.toggle('open', open);
  });
  document.getElementById('sign-out').addEventListener('click', signOut);
  window.addEventListener('hashchange', route);
  window.addEventListener('lpm:unauthorized', () => {
    if (!ctx.me) return;
    ctx.me = null;
    setToken(null);
    location.hash = '#/signin';
  });
  translate(document);
  await loadSession();
  route();
}

boot();
