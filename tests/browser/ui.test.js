// The lpm web UI in headless Chromium against a real `lpm serve --demo` (see support.js).
// Run: (cd tests/browser && npm ci) && cargo build --release && node --test tests/browser/
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startServer, launchBrowser, httpClient, withScreenshot, snap, signIn, ADMIN, RESPONDER } from './support.js';

let server;
let browser;
let desktop; // a context + page for the desktop flows
let page;
let other; // a second client over plain HTTP, signed in separately
let readerToken;
const unique = Date.now().toString(36);
const NAME = `Prueba Navegador ${unique}`;
const PLACE = `Parque de Pruebas ${unique}`;
const PHONE = '+593 99 555 0101';
let caseId;

before(async () => {
  server = await startServer();
  console.log(`# lpm serve --demo ready in ${server.startupMs} ms at ${server.base}`);
  browser = await launchBrowser();
  // a Spanish browser: the UI starts in the browser's language (test 8 covers English)
  desktop = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true, locale: 'es-EC' });
  page = await desktop.newPage();
  other = await httpClient(server.base, RESPONDER);
  const admin = await httpClient(server.base, ADMIN);
  const tok = await admin('/api/v1/tokens', { method: 'POST', body: { label: 'browser-test-reader' } });
  assert.equal(tok.status, 201, tok.text);
  readerToken = tok.json.token;
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const reportBody = (n) => ({
  full_name: `Otro Cliente ${unique} ${n}`, age: 9, gender: 'female', last_seen_at: '2026-11-20T14:30',
  last_seen_place: 'Quito, La Carolina', priority: 'high',
});

test('1. sign in (a wrong password is refused, the right one opens the dashboard)', () => withScreenshot('1-sign-in', () => page, async () => {
  await page.goto(server.base + '/');
  await page.waitForURL(/#\/signin$/);
  const html = await page.request.get(server.base + '/');
  assert.match(html.headers()['content-security-policy'], /script-src 'self'/);
  assert.equal(await page.locator('html').getAttribute('lang'), 'es');
  await page.locator('#f-username').fill(RESPONDER.username);
  await page.locator('#f-password').fill('not-the-password');
  await page.locator('#signin-form button[type=submit]').click();
  await assert.doesNotReject(page.locator('#signin-form .form-status', { hasText: 'Usuario o contraseña incorrectos' }).waitFor());
  await signIn(page, server.base, RESPONDER);
  await page.locator('#who', { hasText: 'responder' }).waitFor();
  assert.equal(await page.locator('#nav a[href="#/report"]').isVisible(), true);
}));

test('2. file a report: client and server field errors, then the case and the list', () => withScreenshot('2-report', () => page, async () => {
  let posts = 0;
  page.on('request', (r) => { if (r.url().endsWith('/api/v1/reports') && r.method() === 'POST') posts += 1; });
  await page.goto(server.base + '/#/report');
  await page.locator('#report-form').waitFor();
  // empty form: the client refuses it, next to the field, without a request
  await page.locator('#report-form button[type=submit]').click();
  const nameError = page.locator('[data-field="full_name"] [data-error-for="full_name"]');
  assert.equal(await nameError.innerText(), 'Obligatorio');
  assert.equal(await page.locator('#f-full_name').getAttribute('aria-invalid'), 'true');
  assert.equal(await page.locator('[data-field="last_seen_place"] .field-error').innerText(), 'Obligatorio');
  assert.equal(posts, 0, 'nothing is sent while the form is invalid');
  await page.locator('#f-full_name').fill(NAME);
  await page.locator('#f-age').fill('151');
  await page.locator('#report-form button[type=submit]').click();
  assert.equal(await page.locator('[data-error-for="age"]').innerText(), 'Un número entero entre 0 y 150');
  // a rule the server checks: an out-of-range age slipped into the request answers 422 {field: "age"}
  await page.locator('#f-age').fill('7');
  await page.locator('#f-gender').selectOption('male');
  await page.locator('#f-last_seen_place').fill(PLACE);
  await page.locator('#f-latitude').fill('-0.180653');
  await page.locator('#f-longitude').fill('-78.467838');
  await page.locator('#f-description').fill('Camiseta roja, zapatos azules');
  await page.locator('#f-reporter_name').fill('Vecina de Pruebas');
  await page.locator('#f-reporter_phone').fill(PHONE);
  await page.locator('#f-priority').selectOption('critical');
  await page.route('**/api/v1/reports', (route) => {
    const body = JSON.parse(route.request().postData());
    body.age = 200;
    route.continue({ postData: JSON.stringify(body) });
  });
  await page.locator('#report-form button[type=submit]').click();
  const ageError = page.locator('[data-field="age"] [data-error-for="age"]');
  await ageError.filter({ hasText: 'between 0 and 150' }).waitFor();
  assert.equal(posts, 1);
  await page.unroute('**/api/v1/reports');
  // the valid report: the new case opens
  await page.locator('#report-form button[type=submit]').click();
  await page.waitForURL(/#\/cases\/\d+$/);
  caseId = Number(page.url().split('/').pop());
  await page.locator('#case-title', { hasText: NAME }).waitFor();
  assert.equal(await page.locator('.case-head .badge.priority-critical').innerText(), 'Crítica');
  assert.equal(await page.locator('.case-head .tag-minor').count(), 1, 'a 7-year-old is marked as a minor');
  // and it is in the list, found by text search, flagged unassigned and minor
  await page.goto(server.base + `/#/cases?q=${encodeURIComponent(unique)}`);
  const row = page.locator(`tr[data-case-id="${caseId}"]`);
  await row.waitFor();
  assert.match(await row.innerText(), new RegExp(NAME));
  assert.match((await row.getAttribute('class')) || '', /unassigned/);
  assert.match((await row.getAttribute('class')) || '', /minor/);
  // filters: a status filter that excludes it
  await page.goto(server.base + `/#/cases?q=${encodeURIComponent(unique)}&status=closed`);
  await page.locator('#case-results .notice').waitFor();
  assert.equal(await page.locator(`tr[data-case-id="${caseId}"]`).count(), 0);
}));

test('3. on the case: assign, change status, log an action, see them in the timeline; a 409 is shown', () => withScreenshot('3-case', () => page, async () => {
  assert.ok(caseId, 'flow 2 created the case');
  await page.goto(server.base + `/#/cases/${caseId}`);
  await page.locator('#assign-form').waitFor();
  const option = page.locator('#f-responsible_id option:not([value=""])').first();
  const respName = (await option.innerText()).split(' · ')[0];
  await page.locator('#f-responsible_id').selectOption(await option.getAttribute('value'));
  await page.locator('#assign-form button[type=submit]').click();
  await page.locator('#case-notice', { hasText: 'Responsable asignado' }).waitFor();
  await page.locator('#timeline li', { hasText: `Asignado a ${respName}` }).waitFor();
  assert.equal(await page.locator('.case-head .tag-unassigned').count(), 0);

  await page.locator('#status-form #f-status').selectOption('in_progress');
  await page.locator('#status-form button[type=submit]').click();
  await page.locator('#case-notice', { hasText: 'Cambios guardados' }).waitFor();
  // the ledger's own status note is shown in the reader's language, not as `open -> in_progress`
  await page.locator('#timeline li', { hasText: 'Abierto → En curso' }).waitFor();
  assert.doesNotMatch(await page.locator('#timeline').innerText(), /open -> in_progress|assigned to/);
  assert.equal(await page.locator('.case-head .badge.status-in_progress').innerText(), 'En curso');
  await page.locator('#timeline li', { hasText: 'Cambio de estado' }).waitFor();

  const notes = `Rastreo con drones ${unique}`;
  await page.locator('#action-form #f-action_type').selectOption('search');
  await page.locator('#action-form #f-notes').fill(notes);
  await page.locator('#action-form button[type=submit]').click();
  await page.locator('#case-notice', { hasText: 'Acción registrada' }).waitFor();
  const searchItem = page.locator('#timeline li', { hasText: notes });
  await searchItem.waitFor();
  assert.match(await searchItem.innerText(), /Búsqueda/);

  // someone else changes the case; the stale form answers 409, says so and reloads
  const fresh = await other(`/api/v1/cases/${caseId}`);
  const bumped = await other(`/api/v1/cases/${caseId}`, { method: 'PATCH', body: { version: fresh.json.case.version, priority: 'low' } });
  assert.equal(bumped.status, 200, bumped.text);
  await page.locator('#status-form #f-status').selectOption('open');
  await page.locator('#status-form button[type=submit]').click();
  await page.locator('#case-notice.error', { hasText: `versión actual ${bumped.json.case.version}` }).waitFor();
  assert.equal(await page.locator('.case-head .badge.priority-low').innerText(), 'Baja', 'the reload shows the other change');
  assert.equal(await page.locator('.case-head .badge.status-in_progress').count(), 1, 'the stale change was not applied');
  await snap(page, 'case-desktop');
}));

test('3b. sightings: the form checks its fields and adds one to the timeline; another client\'s appears without a reload', () => withScreenshot('3b-sightings', () => page, async () => {
  await page.goto(server.base + `/#/cases/${caseId}`);
  const form = page.locator('#sighting-form');
  await form.waitFor();
  await form.locator('#f-seen_at').fill('2026-11-21T10:30');
  await form.locator('#f-latitude').fill('-0.2');
  await form.locator('button[type=submit]').click();
  await page.locator('#f-place-error', { hasText: 'Obligatorio' }).waitFor();
  await form.locator('#f-place').fill(`Mercado ${unique}`);
  await form.locator('button[type=submit]').click();
  await page.locator('#f-longitude-error', { hasText: 'Indique latitud y longitud' }).waitFor();
  await form.locator('#f-longitude').fill('-78.5');
  await form.locator('#f-reporter_name').fill('Testigo Navegador');
  await form.locator('button[type=submit]').click();
  await page.locator('#case-notice', { hasText: 'Avistamiento registrado' }).waitFor();
  const mine = page.locator('#timeline li.event-sighting', { hasText: `Mercado ${unique}` });
  await mine.waitFor();
  assert.match(await mine.innerText(), /Testigo Navegador/);
  assert.match(await mine.innerText(), /equipo de respuesta/);
  // another client's sighting reaches the open page through the cases stream
  const r = await other(`/api/v1/cases/${caseId}/sightings`, { method: 'POST', body: { seen_at: '2026-11-21T11:00', place: `Terminal ${unique}` } });
  assert.equal(r.status, 201, r.text);
  await page.locator('#timeline li.event-sighting', { hasText: `Terminal ${unique}` }).waitFor();
  assert.match(await page.locator('#sighting-count').innerText(), /\d+ avistamientos/);
}));

test('3c. publish the case, open its poster; a phone visitor without JavaScript files a sighting that the responder sees without a reload', () => withScreenshot('3c-public', () => page, async () => {
  await page.goto(server.base + `/#/cases/${caseId}`);
  await page.locator('#publish-toggle').click();
  await page.locator('#case-notice', { hasText: 'Caso publicado' }).waitFor();
  const link = page.locator('#public-url');
  await link.waitFor();
  const publicUrl = await link.getAttribute('href');
  assert.match(publicUrl, /\/public\/cases\/[A-Za-z0-9_-]{22}$/);
  const poster = page.locator('#case-poster');
  const [download] = await Promise.all([page.waitForEvent('download'), poster.click()]);
  assert.equal(download.suggestedFilename(), `cartel-${caseId}.pdf`);
  assert.equal(readFileSync(await download.path()).subarray(0, 4).toString('latin1'), '%PDF');
  // the responder's page stays open; a marker tells whether it reloads
  await page.evaluate(() => { window.__notReloaded = true; });

  // an anonymous visitor on a phone, JavaScript off: the page is plain HTML and the form posts
  const phone = await browser.newContext({ viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true,
    deviceScaleFactor: 2, locale: 'es-EC', javaScriptEnabled: false });
  try {
    const visitor = await phone.newPage();
    const url = new URL(publicUrl, server.base).href;
    const first = await visitor.goto(url);
    assert.equal(first.status(), 200);
    await visitor.locator('h1', { hasText: NAME }).waitFor();
    const text = await visitor.locator('body').innerText();
    assert.ok(!text.includes(PHONE), 'the reporter\'s phone is not on the page');
    assert.equal(await visitor.locator('script').count(), 0, 'no script: it works with JavaScript off');
    const place = `Esquina pública ${unique}`;
    await visitor.locator('#place').fill(place);
    await visitor.locator('#description').fill('Caminaba hacia el norte con una mochila');
    await visitor.locator('#contact').fill('+593 98 111 2233');
    await snap(visitor, 'public-page-phone');
    await Promise.all([visitor.waitForURL(/sent=1/), visitor.locator('form button[type=submit]').tap()]);
    await visitor.locator('.notice', { hasText: 'Gracias' }).waitFor();
    assert.equal(await visitor.locator('#place').inputValue(), '', 'a fresh form for another sighting');
    await snap(visitor, 'public-sighting-sent');

    // the responder sees it in the timeline, marked as from the public, without reloading
    const item = page.locator('#timeline li.event-sighting', { hasText: place });
    await item.waitFor({ timeout: 20000 });
    assert.match(await item.innerText(), /ciudadanía/);
    assert.match(await item.innerText(), /\+593 98 111 2233/);
    assert.equal(await page.evaluate(() => window.__notReloaded), true, 'the page was not reloaded');
  } finally {
    await phone.close();
  }
  // the case list counts the case's sightings: two from 3b and the public one
  await page.goto(server.base + `/#/cases?q=${encodeURIComponent(unique)}`);
  const cell = page.locator(`tr[data-case-id="${caseId}"] td.sightings`);
  await cell.waitFor();
  assert.equal(await cell.innerText(), '3');
}));

test('4. the dashboard follows another client live, without reloading, and resumes with since=', () => withScreenshot('4-dashboard', () => page, async () => {
  const sockets = [];
  page.on('websocket', (ws) => sockets.push(ws.url()));
  await page.goto(server.base + '/#/dashboard');
  await page.locator('#live-mode.live-live').waitFor();
  const tile = page.locator('[data-kpi="total_reports"] .tile-value');
  await page.waitForFunction(() => /\d/.test(document.querySelector('[data-kpi="total_reports"] .tile-value').textContent));
  const digits = async () => Number((await tile.innerText()).replace(/\D/g, ''));
  const chartTotal = async (id) => Number(await page.locator(`#${id}`).getAttribute('data-total'));
  const before = await digits();
  const ageBefore = await chartTotal('chart-age_group');
  const minorsBefore = Number((await page.locator('[data-kpi="open_minor_cases"] .tile-value').innerText()).replace(/\D/g, ''));
  assert.equal(before, ageBefore, 'every report is in one age band');
  await page.evaluate(() => { window.__noReload = 'still here'; });
  for (let i = 0; i < 3; i += 1) {
    const r = await other('/api/v1/reports', { method: 'POST', body: reportBody(i) });
    assert.ok([201, 202].includes(r.status), r.text);
  }
  await page.waitForFunction((b) => Number(document.querySelector('[data-kpi="total_reports"] .tile-value').textContent.replace(/\D/g, '')) >= b + 3, before);
  await page.waitForFunction((b) => Number(document.getElementById('chart-age_group').getAttribute('data-total')) >= b + 3, ageBefore);
  const bar = Number(await page.locator('#chart-age_group .bar[data-label="0–11"]').getAttribute('data-value'));
  assert.ok(bar >= 3, 'the 0-11 bar holds the three 9-year-olds');
  const minorsAfter = Number((await page.locator('[data-kpi="open_minor_cases"] .tile-value').innerText()).replace(/\D/g, ''));
  assert.ok(minorsAfter >= minorsBefore + 3, `open minors ${minorsBefore} -> ${minorsAfter}`);
  assert.equal(await page.evaluate(() => window.__noReload), 'still here', 'no navigation happened');
  assert.match(await page.locator('#live-freshness').innerText(), /último mensaje hace \d+ s/);
  assert.match(await page.locator('#live-tick').innerText(), /\d/);
  // drop the socket: it reconnects with since=<tick> and keeps applying diffs
  const tickBefore = Number((await page.locator('#live-tick').innerText()).replace(/\D/g, ''));
  const [ws] = await Promise.all([
    page.waitForEvent('websocket', { predicate: (w) => /since=\d+/.test(w.url()), timeout: 20000 }),
    page.locator('#live-reconnect').click(),
  ]);
  const resumed = ws.url();
  assert.equal(sockets.length, 2, `one socket, then one reconnect: ${sockets.join(', ')}`);
  await page.waitForFunction(() => document.getElementById('live-mode').classList.contains('live-live'));
  assert.ok(Number(/since=(\d+)/.exec(resumed)[1]) >= tickBefore - 1);
  const mid = await digits();
  const r = await other('/api/v1/reports', { method: 'POST', body: reportBody(9) });
  assert.ok([201, 202].includes(r.status), r.text);
  await page.waitForFunction((b) => Number(document.querySelector('[data-kpi="total_reports"] .tile-value').textContent.replace(/\D/g, '')) >= b + 1, mid);
  // what the page shows equals what the server's views say (diffs applied exactly)
  const views = (await other('/api/v1/views')).json;
  await page.waitForFunction((want) => Number(document.querySelector('[data-kpi="total_reports"] .tile-value').textContent.replace(/\D/g, '')) >= want, views.views.kpi.total_reports);
  assert.equal(await page.evaluate(() => window.__noReload), 'still here');
  await snap(page, 'dashboard-desktop');
}));

test('5. download the case PDF from the case page', () => withScreenshot('5-pdf', () => page, async () => {
  await page.goto(server.base + `/#/cases/${caseId}`);
  const link = page.locator('#case-pdf');
  await link.waitFor();
  const href = await link.getAttribute('href');
  assert.equal(href, `/api/v1/cases/${caseId}/report.pdf?lang=es`);
  const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
  assert.equal(download.suggestedFilename(), `caso-${caseId}.pdf`);
  const bytes = readFileSync(await download.path());
  assert.equal(bytes.subarray(0, 4).toString('latin1'), '%PDF');
  // and an analytics report from the reports page
  await page.goto(server.base + '/#/reports');
  const demographic = page.locator('#report-links a[href^="/api/v1/reports/demographic.pdf"]');
  await demographic.waitFor();
  const [report] = await Promise.all([page.waitForEvent('download'), demographic.click()]);
  const reportBytes = readFileSync(await report.path());
  assert.equal(reportBytes.subarray(0, 4).toString('latin1'), '%PDF');
}));

test('6. the same flow on a phone (360x740, touch)', async () => {
  const phone = await browser.newContext({ viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2, locale: 'es-EC' });
  const p = await phone.newPage();
  try {
    await withScreenshot('6-phone', () => p, async () => {
      await signIn(p, server.base, RESPONDER);
      const noOverflow = async () => assert.ok(await p.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1), 'no horizontal scrolling');
      const toggle = p.locator('#nav-toggle');
      assert.equal(await toggle.isVisible(), true);
      assert.equal(await p.locator('#nav a[href="#/report"]').isVisible(), false, 'the menu starts collapsed');
      await toggle.tap();
      assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
      await p.locator('#nav a[href="#/report"]').tap();
      await p.locator('#report-form').waitFor();
      assert.equal(await p.locator('#nav a[href="#/report"]').isVisible(), false, 'the menu closes after navigating');
      await noOverflow();
      await p.locator('#report-form button[type=submit]').tap();
      assert.equal(await p.locator('[data-error-for="full_name"]').innerText(), 'Obligatorio');
      await p.locator('#f-full_name').fill(`Movil ${NAME}`);
      await p.locator('#f-gender').selectOption('female');
      await p.locator('#f-last_seen_place').fill(PLACE);
      await p.locator('#report-form button[type=submit]').tap();
      await p.waitForURL(/#\/cases\/\d+$/);
      const id = Number(p.url().split('/').pop());
      await p.locator('#case-title', { hasText: 'Movil' }).waitFor();
      await p.locator('#action-form #f-action_type').selectOption('call');
      await p.locator('#action-form #f-notes').fill('Llamada desde el móvil');
      await p.locator('#action-form button[type=submit]').tap();
      await p.locator('#timeline li', { hasText: 'Llamada desde el móvil' }).waitFor();
      await noOverflow();
      await snap(p, 'case-phone');
      await p.goto(server.base + `/#/cases?q=${encodeURIComponent('Movil')}`);
      await p.locator(`tr[data-case-id="${id}"]`).waitFor();
      await noOverflow();
      await p.goto(server.base + '/#/dashboard');
      await p.locator('#live-mode.live-live').waitFor();
      await p.waitForFunction(() => /\d/.test(document.querySelector('[data-kpi="total_reports"] .tile-value').textContent));
      await noOverflow();
      await snap(p, 'dashboard-phone');
    });
  } finally {
    await phone.close();
  }
});

test('7. English labels on request, remembered; a reader token sees no personal data', async () => {
  await withScreenshot('7-language', () => page, async () => {
    await page.goto(server.base + '/#/cases');
    await page.locator('h1', { hasText: 'Casos' }).waitFor();
    await page.locator('#lang-select').selectOption('en');
    await page.locator('h1', { hasText: 'Cases' }).waitFor();
    assert.equal(await page.locator('#nav a[href="#/report"]').innerText(), 'New report');
    assert.equal(await page.locator('html').getAttribute('lang'), 'en');
    await page.reload();
    await page.locator('#nav a[href="#/dashboard"]', { hasText: 'Dashboard' }).waitFor();
    await page.goto(server.base + `/#/cases/${caseId}`);
    await page.locator('#case-title', { hasText: `Case ${caseId}` }).waitFor();
    assert.equal(await page.locator('#case-pdf').getAttribute('href'), `/api/v1/cases/${caseId}/report.pdf?lang=en`);
    assert.match(await page.locator('#timeline').innerText(), /Search/);
    await page.goto(server.base + '/?lang=es#/reports');
    await page.locator('h1', { hasText: 'Informes' }).waitFor();
    const links = await page.locator('#report-links a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
    assert.equal(links.length, 5);
    for (const [i, kind] of ['operational', 'demographic', 'hourly', 'sensitive', 'hotspots'].entries()) {
      assert.match(links[i], new RegExp(`^/api/v1/reports/${kind}\\.pdf\\?from=\\d{4}-\\d\\d-\\d\\d&to=\\d{4}-\\d\\d-\\d\\d&lang=es$`));
    }
    await page.locator('#f-from').fill('2026-12-31');
    await page.locator('#f-to').fill('2026-01-01');
    await page.locator('[data-error-for="to"]', { hasText: 'anterior' }).waitFor();
    await page.goto(server.base + '/#/engine');
    // the engine page shows the sizes the engine reports: the case arrangement holds every case
    await page.locator('#engine-arrangements').waitFor();
    const arrangements = await page.locator('#engine-arrangements').innerText();
    assert.match(arrangements, /case_records_by_id/);
    assert.match(await page.locator('#engine-sources').innerText(), /embedded-log/);
    assert.match(await page.locator('#engine-upsert').innerText(), /persons_lost/);
    assert.equal(await page.locator('#engine-unavailable').count(), 0);
    // the counters are the API's (they read 0 when the page used other names), and the demo
    // start took a checkpoint after loading its history
    assert.match(await page.locator('#engine-counters').innerText(), /aplicados\s+[1-9]/);
    assert.match(await page.locator('#engine-checkpoint').innerText(), /n\.º [1-9]/);
  });

  const readerCtx = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'es-EC' });
  const r = await readerCtx.newPage();
  try {
    await withScreenshot('7-reader', () => r, async () => {
      await r.goto(server.base + '/#/signin');
      await r.locator('#f-token').fill(readerToken);
      await r.locator('#token-form button[type=submit]').click();
      await r.waitForURL(/#\/dashboard$/);
      await r.locator('#who', { hasText: 'lectura' }).waitFor();
      assert.equal(await r.locator('#nav a[href="#/report"]').isVisible(), false, 'no report form for readers');
      await r.locator('#live-mode.live-polling').waitFor();
      await r.waitForFunction(() => /\d/.test(document.querySelector('[data-kpi="total_reports"] .tile-value').textContent));
      await r.goto(server.base + '/#/cases');
      await r.locator('tr.case-row').first().waitFor();
      assert.equal(await r.locator('#f-q').count(), 0, 'no text search for readers');
      await r.goto(server.base + `/#/cases/${caseId}`);
      await r.locator('#case-title').waitFor();
      const text = await r.locator('main').innerText();
      for (const secret of [NAME, PLACE, PHONE, 'Camiseta roja', 'Vecina de Pruebas', 'Rastreo con drones', '-0.180653']) {
        assert.ok(!text.includes(secret), `a reader sees ${secret}`);
      }
      assert.match(text, /Los datos personales no se muestran/);
      assert.equal(await r.locator('#status-form, #assign-form, #action-form').count(), 0, 'no write controls');
      await r.goto(server.base + '/#/report');
      await r.locator('main .notice', { hasText: 'solo lectura' }).waitFor();
      assert.equal(await r.locator('#report-form').count(), 0);
    });
  } finally {
    await readerCtx.close();
  }
});

test('8. the UI starts in the browser language (English or Spanish, else Spanish) until one is chosen; titles per view', async () => {
  const english = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-GB' });
  const p = await english.newPage();
  try {
    await withScreenshot('8-browser-language', () => p, async () => {
      await p.goto(server.base + '/#/signin');
      await p.locator('h1', { hasText: 'Sign in' }).waitFor();
      assert.equal(await p.locator('html').getAttribute('lang'), 'en');
      assert.equal(await p.locator('#lang-select').inputValue(), 'en');
      assert.equal(await p.title(), 'Sign in · LPM');
      assert.equal(await p.evaluate(() => localStorage.getItem('lpm.lang')), null, 'a guess is not stored as a choice');
      await signIn(p, server.base, RESPONDER);
      await p.waitForFunction(() => document.title === 'Dashboard · LPM');
      await p.goto(server.base + '/#/cases');
      await p.locator('h1', { hasText: 'Cases' }).waitFor();
      assert.equal(await p.title(), 'Cases · LPM');
      await p.goto(server.base + `/#/cases/${caseId}`);
      await p.locator('#case-title').waitFor();
      assert.equal(await p.title(), `Case ${caseId} · LPM`);
      // the explicit choice wins over the browser's language, and is remembered
      await p.locator('#lang-select').selectOption('es');
      await p.waitForFunction((id) => document.title === `Caso ${id} · LPM`, caseId);
      await p.reload();
      await p.locator('#case-title', { hasText: `Caso ${caseId}` }).waitFor();
      assert.equal(await p.locator('html').getAttribute('lang'), 'es');
      await p.goto(server.base + '/#/nowhere');
      await p.waitForFunction(() => document.title === 'Página no encontrada · LPM');
    });
  } finally {
    await english.close();
  }
  // a browser in neither language gets Spanish
  const german = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'de-DE' });
  try {
    const p2 = await german.newPage();
    await p2.goto(server.base + '/#/signin');
    await p2.locator('h1', { hasText: 'Iniciar sesión' }).waitFor();
    assert.equal(await p2.locator('html').getAttribute('lang'), 'es');
    assert.equal(await p2.title(), 'Iniciar sesión · LPM');
  } finally {
    await german.close();
  }
});

test('9. server errors are shown in the reader language through their stable code', async () => {
  for (const [locale, bad, unavailable] of [
    ['es-EC', 'Valor no válido', 'El servicio no está disponible ahora'],
    ['en-US', 'Invalid value', 'The service is not available now'],
  ]) {
    const c = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale });
    const p = await c.newPage();
    try {
      await withScreenshot(`9-errors-${locale}`, () => p, async () => {
        await signIn(p, server.base, RESPONDER);
        // a real error from the server: an unknown status filter
        const answer = p.waitForResponse((r) => r.url().includes('/api/v1/cases?') && r.status() >= 400);
        await p.goto(server.base + '/#/cases?status=bogus');
        const body = await (await answer).json();
        assert.equal(body.code, 'invalid_field', JSON.stringify(body));
        const shown = p.locator('#case-results .error');
        await shown.waitFor();
        assert.ok((await shown.innerText()).startsWith(bad), await shown.innerText());
        // a code with its own text, and a code this UI does not know (the server's words are shown)
        await p.route('**/api/v1/cases?*', (route) => route.fulfill({ status: 503, contentType: 'application/json',
          body: JSON.stringify({ code: 'unavailable', error: 'engine not ready', field: null }) }));
        await p.goto(server.base + '/#/cases?status=open');
        await p.locator('#case-results .error', { hasText: unavailable }).waitFor();
        assert.doesNotMatch(await p.locator('#case-results .error').innerText(), /engine not ready/);
        await p.unroute('**/api/v1/cases?*');
        await p.route('**/api/v1/cases?*', (route) => route.fulfill({ status: 418, contentType: 'application/json',
          body: JSON.stringify({ code: 'brand_new_code', error: 'a message from a newer server', field: null }) }));
        await p.goto(server.base + '/#/cases?status=closed');
        await p.locator('#case-results .error', { hasText: 'a message from a newer server' }).waitFor();
        await p.unroute('**/api/v1/cases?*');
      });
    } finally {
      await c.close();
    }
  }
});

test('10. every chart has a data table for screen readers; the hourly chart is legible at 360 px', async () => {
  for (const [width, hourlyRows] of [[1280, 72], [360, 12]]) {
    const c = await browser.newContext({ viewport: { width, height: 800 }, locale: 'es-EC', deviceScaleFactor: 1 });
    const p = await c.newPage();
    try {
      await withScreenshot(`10-charts-${width}`, () => p, async () => {
        await signIn(p, server.base, RESPONDER);
        await p.locator('#chart-hourly').waitFor();
        for (const id of ['chart-hourly', 'chart-age_group', 'chart-gender', 'chart-hour_of_day', 'chart-cases_by_status', 'chart-open_by_priority', 'chart-responsible_load']) {
          const bars = await p.locator(`#${id} .bar`).count();
          const table = p.locator(`#${id}-table`);
          assert.equal(await table.count(), 1, `${id} has a table`);
          assert.equal(await table.locator('tbody tr').count(), bars, `${id}: one row per bar`);
          assert.ok((await table.locator('caption').textContent()).length > 0, `${id}: the table has a caption`);
          // the table says what the bars say
          const drawn = await p.locator(`#${id} .bar`).evaluateAll((gs) => gs.map((g) => Number(g.dataset.value)));
          const listed = await table.locator('tbody td').evaluateAll((tds) => tds.map((td) => Number(td.textContent.replace(/\D/g, ''))));
          assert.deepEqual(listed, drawn, id);
          // visually hidden, but in the accessibility tree
          const box = await table.evaluate((t) => t.parentElement.getBoundingClientRect().toJSON());
          assert.ok(box.width <= 1 && box.height <= 1, `${id}: the table is visually hidden ${JSON.stringify(box)}`);
          assert.equal(await table.getAttribute('aria-hidden'), null);
        }
        assert.equal(await p.locator('#chart-hourly .bar').count(), hourlyRows);
        // the axis labels of the hourly chart are apart and at least 9 px tall on screen
        const boxes = await p.locator('#chart-hourly text.axis').evaluateAll((ts) => ts.map((t) => t.getBoundingClientRect()).map((r) => ({ left: r.left, right: r.right, height: r.height })));
        assert.ok(boxes.length >= 3, `${boxes.length} axis labels`);
        for (let i = 1; i < boxes.length; i += 1) {
          assert.ok(boxes[i].left >= boxes[i - 1].right, `axis labels ${i - 1} and ${i} overlap: ${JSON.stringify(boxes)}`);
        }
        for (const b of boxes) assert.ok(b.height >= 9, `an axis label ${b.height.toFixed(1)} px tall`);
        assert.ok(await p.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1), 'no horizontal scrolling');
        if (width === 360) await snap(p, 'dashboard-hourly-360');
      });
    } finally {
      await c.close();
    }
  }
});

test('11. contacts: an admin links a user to a contact; the case page says a manual assignment may exceed the cap', async () => {
  const c = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-US' });
  const p = await c.newPage();
  const admin = await httpClient(server.base, ADMIN);
  try {
    await withScreenshot('11-contacts', () => p, async () => {
      await signIn(p, server.base, ADMIN);
      await p.goto(server.base + '/#/contacts');
      await p.locator('#auto-assign-note', { hasText: 'up to 50 open cases' }).waitFor();
      const first = p.locator('#contacts select[data-contact]').first();
      const id = Number(await first.getAttribute('data-contact'));
      await first.selectOption(RESPONDER.username);
      // the page reloads from the server: the link is there, and in the API
      await p.locator(`#contacts select[data-contact="${id}"]:not([disabled])`).waitFor();
      await p.waitForFunction((cid) => document.querySelector(`#contacts select[data-contact="${cid}"]`)?.value === 'responder', id);
      const list = await admin('/api/v1/responsibles');
      assert.equal(list.json.items.find((x) => x.id === id).user, RESPONDER.username);
      assert.deepEqual(list.json.auto_assign, { cap: 50, session_ttl_s: 300 });
      // the assign form of a case notes the cap
      await p.goto(server.base + `/#/cases/${caseId}`);
      await p.locator('#assign-form #cap-note', { hasText: 'may exceed' }).waitFor();
      // unlinked again, so no later filing is assigned to the responder
      await p.goto(server.base + '/#/contacts');
      await p.locator(`#contacts select[data-contact="${id}"]`).selectOption('');
      await p.waitForFunction((cid) => document.querySelector(`#contacts select[data-contact="${cid}"]`)?.value === '', id);
      const after = await admin('/api/v1/responsibles');
      assert.equal(after.json.items.find((x) => x.id === id).user, undefined);
    });
  } finally {
    await c.close();
  }
});
