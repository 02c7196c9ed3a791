// The dashboard's hot-spot map in headless Chromium against a real `lpm serve --demo` (see
// support.js): the cells are drawn from the GeoJSON, shaded with a legend, labelled for screen
// readers, and a report filed by another client appears on the map and moves its cell's
// figures live, through the WebSocket `hotspots` topic, without a reload. A reader's token sees
// only cells of at least `--hotspots-min-reports` (5) reports; it fits a phone's width.
// Run: (cd tests/browser && npm ci) && cargo build --release && node --test tests/browser/
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, httpClient, withScreenshot, snap, signIn, ADMIN, RESPONDER } from './support.js';

let server;
let browser;
let page;
let other;
let readerToken;
const unique = Date.now().toString(36);
// Puerto Ayora (Galápagos): no demo report is within a cell of it
const AT = { latitude: -0.743717, longitude: -90.313822 };

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'es-EC' });
  page = await ctx.newPage();
  other = await httpClient(server.base, RESPONDER);
  const admin = await httpClient(server.base, ADMIN);
  const tok = await admin('/api/v1/tokens', { method: 'POST', body: { label: 'browser-test-hotspots' } });
  assert.equal(tok.status, 201, tok.text);
  readerToken = tok.json.token;
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const fileReport = async (n) => {
  const r = await other('/api/v1/reports', {
    method: 'POST',
    body: { full_name: `Mapa Vivo ${unique} ${n}`, age: 10, gender: 'female', last_seen_at: '2026-11-20T14:30',
      last_seen_place: 'Puerto Ayora, muelle', ...AT },
  });
  assert.ok([201, 202].includes(r.status), r.text);
};

const cellCount = () => page.locator('#hotspot-map g.cell').count();

test('the map draws the cells and a filed report updates it live, without a reload', () => withScreenshot('hotspots-live', () => page, async () => {
  await signIn(page, server.base, RESPONDER);
  await page.locator('#live-mode.live-live').waitFor();
  // the demo's cells, each a polygon with its figures in a title and an aria-label
  const view = (await other('/api/v1/views/hotspots')).json;
  const demoCells = Object.keys(view.value);
  assert.ok(demoCells.length > 1, 'the demo has cells');
  await page.waitForFunction((n) => document.querySelectorAll('#hotspot-map g.cell').length >= n, demoCells.length);
  const first = page.locator(`#hotspot-map g.cell[data-cell="${demoCells[0]}"]`);
  assert.match(await first.getAttribute('aria-label'), /^Celda [0-9a-f]{15}: \d+ denuncias, \d+ casos abiertos, \d+ de menores$/);
  assert.match(await first.locator('title').textContent(), /denuncias/);
  assert.equal(await first.locator('path').count(), 1);
  assert.match(await first.locator('path').getAttribute('d'), /^M[\d.]+,[\d.]+(L[\d.]+,[\d.]+){5,}Z/);
  assert.ok(await page.locator('#hotspot-map-legend li').count() >= 1, 'a legend');
  assert.equal(await page.locator('#hotspot-map-h').innerText(), 'Zonas con denuncias (celdas H3)');
  // a keyboard user reaches a cell and hears its figures
  await first.focus();
  assert.match(await page.locator('#hotspot-map-detail').innerText(), new RegExp(`^Celda ${demoCells[0]}: \\d+ denuncias`));

  // nothing is drawn in the new cell yet
  await page.evaluate(() => { window.__noReload = 'still here'; });
  const before = await cellCount();
  await fileReport(1);
  // the server's new cell: the one whose center is nearest AT (the demo trickle may add others)
  const rows = (await other('/api/v1/views/hotspots?format=rows')).json;
  const near = rows.map((r) => ({ ...r, d: Math.hypot(r.lat - AT.latitude, r.lon - AT.longitude) })).sort((a, b) => a.d - b.d)[0];
  assert.ok(near.d < 0.02 && !demoCells.includes(near.cell) && near.reports === 1, JSON.stringify(near));
  const added = [near.cell];
  const cell = page.locator(`#hotspot-map g.cell[data-cell="${added[0]}"]`);
  await cell.waitFor({ timeout: 20000 });
  assert.equal(await cell.getAttribute('data-reports'), '1');
  assert.ok(await cellCount() >= before + 1, 'one polygon more');
  assert.match(await cell.getAttribute('aria-label'), /: 1 denuncias, 1 casos abiertos, 1 de menores$/);
  // a second report in the same cell changes its figures in place
  await fileReport(2);
  await page.waitForFunction((c) => document.querySelector(`#hotspot-map g.cell[data-cell="${c}"]`)?.getAttribute('data-reports') === '2', added[0], { timeout: 20000 });
  assert.match(await cell.locator('title').textContent(), /: 2 denuncias, 2 casos abiertos, 2 de menores$/);
  assert.equal(await page.locator(`#hotspot-map g.cell[data-cell="${added[0]}"]`).count(), 1, 'the same one polygon');
  assert.equal(await page.evaluate(() => window.__noReload), 'still here', 'no navigation happened');
  await snap(page, 'hotspots-desktop');
}));

test('a reader sees only cells of at least 5 reports, on a phone-width page', () => withScreenshot('hotspots-reader', () => page, async () => {
  const phone = await browser.newContext({ viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true, locale: 'en-GB' });
  const r = await phone.newPage();
  try {
    await r.goto(server.base + '/#/signin');
    await r.locator('#f-token').fill(readerToken);
    await r.locator('#token-form button[type=submit]').click();
    await r.waitForURL(/#\/dashboard$/);
    await r.locator('#live-mode.live-polling').waitFor();
    const all = (await other('/api/v1/views/hotspots')).json.value;
    const small = Object.keys(all).filter((c) => all[c].reports < 5);
    assert.ok(small.length >= 1, 'the Galápagos cell has 2 reports');
    await r.waitForFunction(() => document.querySelectorAll('#hotspot-map g.cell').length > 0, null, { timeout: 20000 });
    const drawn = await r.locator('#hotspot-map g.cell').evaluateAll((gs) => gs.map((g) => Number(g.dataset.reports)));
    assert.ok(drawn.every((n) => n >= 5), `only cells of 5 or more: ${drawn}`);
    for (const c of small) assert.equal(await r.locator(`#hotspot-map g.cell[data-cell="${c}"]`).count(), 0, `${c} is below k`);
    assert.equal(await r.locator('#hotspot-map-h').innerText(), 'Hot spots (H3 cells)');
    assert.match(await r.locator('#hotspot-map').getAttribute('aria-label'), /^Map of \d+ cells/);
    // the map fits the phone: no horizontal scrolling
    const box = await r.locator('#hotspot-map').boundingBox();
    assert.ok(box && box.width <= 360 && box.width > 200, `map width ${box && box.width}`);
    assert.equal(await r.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), true, 'no horizontal scroll');
    // a tap shows the figures (the last cell is painted last, so no neighbour covers it)
    const cell = r.locator('#hotspot-map g.cell').last();
    await cell.tap();
    assert.match(await r.locator('#hotspot-map-detail').innerText(), /^Cell [0-9a-f]{15}: \d+ reports/);
    await snap(r, 'hotspots-phone-reader');
  } finally {
    await phone.close();
  }
}));
