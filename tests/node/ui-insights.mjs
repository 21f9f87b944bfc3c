// Drives the registry's north-star dashboard and audit pages in headless Chromium (Debian's,
// through playwright-core): signs in with the development form as an auditor, reads the month's
// headline figures and charts, searches the audit, and screenshots each page. Prints one JSON
// line with what it saw; exits non-zero on any failed step.
//
// Usage: node ui-insights.mjs <registry-url> <screenshot-dir> <user> <groups> <search>
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { mkdirSync } from 'node:fs';

const tools = process.env.SWITCHBOARD_NODE_TOOLS;
const require = createRequire(`${tools}/package.json`);
const playwright = await import(pathToFileURL(require.resolve('playwright-core')).href);
const { chromium } = playwright.chromium ? playwright : playwright.default;

const [registry, shots, user, groups, search] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const seen = {};
const shot = (name) => page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
try {
  await page.goto(`${registry}/ui/login`);
  await page.fill('#dev-user', user);
  await page.fill('#dev-groups', groups);
  await page.click('#dev-sign-in');
  await page.waitForSelector('#signed-in-as');

  await page.click('a[href="/ui/insights"]');
  await page.waitForSelector('#hours-saved');
  seen.hoursSaved = (await page.textContent('#hours-saved')).trim();
  seen.successfulCalls = (await page.textContent('#successful-calls')).trim();
  seen.activeUsers = (await page.textContent('#active-users')).trim();
  seen.errorRate = (await page.textContent('#error-rate')).trim();
  seen.dailyBars = await page.$$eval('#daily-chart rect', (bars) => bars.length);
  seen.toolBars = await page.$$eval('#tools-chart rect', (bars) => bars.length);
  seen.topTool = await page.textContent('#tools-table tbody tr:first-child td:first-child');
  await shot('21-insights-dashboard');

  await page.click('a[href="/ui/audit"]');
  await page.waitForSelector('#audit-search');
  await page.fill('#audit-search', search);
  await page.click('#audit-filter');
  await page.waitForLoadState();
  seen.auditRows = await page.$$eval('#audit-table tbody tr', (rows) => rows.length);
  seen.redacted = (await page.textContent('#audit-table tbody tr:first-child')).includes('[redacted]');
  seen.exportLink = await page.getAttribute('#export-csv', 'href');
  await shot('22-audit-search');
  process.stdout.write(`${JSON.stringify(seen)}\n`);
} catch (e) {
  await page.screenshot({ path: `${shots}/insights-failure.png`, fullPage: true }).catch(() => {});
  process.stdout.write(`${JSON.stringify({ error: String(e), url: page.url(), seen })}\n`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
