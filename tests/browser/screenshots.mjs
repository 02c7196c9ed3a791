// Makes the web UI screenshots in docs/img/ from a fresh `lpm serve --demo` (real data of the
// demo, no test names, no error banners). Not a test (`node --test` skips this file name).
// Run: cargo build --release && (cd tests/browser && npm ci) && node tests/browser/screenshots.mjs
import { join } from 'node:path';
import { startServer, launchBrowser, httpClient, signIn, ROOT, RESPONDER } from './support.js';

const server = await startServer();
const browser = await launchBrowser();
try {
  const api = await httpClient(server.base, RESPONDER);
  // the demo case with the richest timeline among the first page of open cases
  const list = await api('/api/v1/cases?status=in_progress&per_page=50&sort=id');
  if (list.status !== 200) throw new Error(`GET /api/v1/cases: ${list.status} ${list.text}`);
  let best = null;
  for (const c of list.json.items) {
    const d = await api(`/api/v1/cases/${c.id}`);
    const n = d.json.actions.length + d.json.history.length;
    if (!best || n > best.n) best = { id: c.id, n };
  }
  if (!best) throw new Error('the demo has no case in progress');
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'es-EC' });
  const page = await context.newPage();
  await signIn(page, server.base, RESPONDER, 'es');
  await page.goto(server.base + `/#/cases/${best.id}`);
  await page.locator('#timeline li').first().waitFor();
  const out = join(ROOT, 'docs', 'img', 'case.png');
  await page.screenshot({ path: out, fullPage: true });
  console.log(`case ${best.id} (${best.n} timeline events) -> ${out}`);
} finally {
  await browser.close();
  await server.stop();
}
