// Sign-in: a person with username and password (cookie session), or a reader with an API token.
import { api, setToken } from './api.js';
import { h, fill, field, clearErrors, showFieldError, announce } from './dom.js';
import { t, errorMessage } from './i18n.js';

export function render(main, ctx) {
  const user = field('username', 'auth.username', h('input', { type: 'text', autocomplete: 'username', required: true }));
  const pass = field('password', 'auth.password', h('input', { type: 'password', autocomplete: 'current-password', required: true }));
  const status = h('p', { class: 'form-status', role: 'alert' });
  const form = h('form', { class: 'card narrow', id: 'signin-form', novalidate: true },
    h('h2', { 'data-i18n': 'auth.with_password' }), user.wrap, pass.wrap, status,
    h('button', { type: 'submit', class: 'primary', 'data-i18n': 'auth.sign_in' }));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    status.textContent = '';
    let ok = true;
    if (!user.input.value.trim()) ok = !showFieldError(form, 'username', t('validation.required'));
    if (!pass.input.value) ok = !showFieldError(form, 'password', t('validation.required')) && ok;
    if (!ok) return;
    try {
      setToken(null);
      await api('/api/v1/session', { method: 'POST', body: { username: user.input.value.trim(), password: pass.input.value } });
      announce(t('auth.signed_in'));
      await ctx.signedIn();
    } catch (err) {
      status.textContent = err.status === 429 ? t('auth.locked') : err.status === 401 ? t('auth.bad_credentials') : errorMessage(err);
    }
  });

  const tok = field('token', 'auth.token', h('input', { type: 'password', autocomplete: 'off', spellcheck: 'false', required: true }), 'auth.token_hint');
  const tokStatus = h('p', { class: 'form-status', role: 'alert' });
  const tokForm = h('form', { class: 'card narrow', id: 'token-form', novalidate: true },
    h('h2', { 'data-i18n': 'auth.with_token' }), tok.wrap, tokStatus,
    h('button', { type: 'submit', 'data-i18n': 'auth.use_token' }));
  tokForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(tokForm);
    tokStatus.textContent = '';
    const value = tok.input.value.trim();
    if (!value.startsWith('lpm_')) {
      showFieldError(tokForm, 'token', t('auth.token_format'));
      return;
    }
    setToken(value);
    try {
      await api('/api/v1/session');
      announce(t('auth.signed_in'));
      await ctx.signedIn();
    } catch {
      setToken(null);
      tokStatus.textContent = t('auth.bad_token');
    }
  });
  fill(main, h('h1', { 'data-i18n': 'auth.title' }), h('div', { class: 'grid-2' }, form, tokForm));
  user.input.focus();
}
