// The JSON API client. People sign in with a session cookie (HttpOnly, SameSite=Strict, sent by
// the browser); readers paste an API token, kept in sessionStorage and sent as a Bearer header.

const TOKEN_KEY = 'lpm.token';

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/**
 * An API error: the HTTP status and the `{code, error, field, current_version}` body. `code` is
 * the stable word the UI translates (i18n.js `errorMessage`); `message` is the server's English.
 */
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.code = body ? body.code ?? null : null;
    this.field = body ? body.field ?? null : null;
    this.currentVersion = body ? body.current_version ?? null : null;
  }
}

function headers(json) {
  const h = { Accept: 'application/json' };
  if (json) h['Content-Type'] = 'application/json';
  const tk = token();
  if (tk) h.Authorization = 'Bearer ' + tk;
  return h;
}

/** Calls the API; resolves to {status, data, location}, rejects with ApiError on a non-2xx. */
export async function api(path, { method = 'GET', body } = {}) {
  const r = await fetch(path, {
    method,
    headers: headers(body !== undefined),
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  const text = await r.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!r.ok) {
    if (r.status === 401 && path !== '/api/v1/session') {
      window.dispatchEvent(new CustomEvent('lpm:unauthorized'));
    }
    throw new ApiError(r.status, data);
  }
  return { status: r.status, data, location: r.headers.get('Location') };
}

/**
 * Follows a download link. With a cookie session the browser sends the cookie itself; with a
 * token the file is fetched with the Bearer header and handed over as a blob.
 */
export async function downloadWithToken(event) {
  const tk = token();
  if (!tk) return; // the plain link works
  event.preventDefault();
  const a = event.currentTarget;
  const r = await fetch(a.href, { headers: { Authorization: 'Bearer ' + tk } });
  if (!r.ok) throw new ApiError(r.status, null);
  const url = URL.createObjectURL(await r.blob());
  const tmp = document.createElement('a');
  tmp.href = url;
  tmp.download = a.getAttribute('download') || 'lpm.pdf';
  document.body.append(tmp);
  tmp.click();
  tmp.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
