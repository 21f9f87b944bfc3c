// Drives the registry's approvals inbox in headless Chromium (Debian's, through playwright-core):
// signs in with the development form as an approver, rejects the first proposal shown with a
// reason, then approves all the others in one action. Screenshots go to the folder given. Prints
// one JSON line with what it saw; exits non-zero on any failed step.
//
// Usage: node ui-approvals.mjs <registry-url> <screenshot-dir> <user> <groups>
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { mkdirSync } from 'node:fs';

const tools = process.env.SWITCHBOARD_NODE_TOOLS;
const require = createRequire(`${tools}/package.json`);
const playwright = await import(pathToFileURL(require.resolve('playwright-core')).href);
const { chromium } = playwright.chromium ? playwright : playwright.default;

const [registry, shots, user, groups] = process.argv.slice(2);
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
  await page.goto(`${registry}/ui/approvals`);
  seen.shown = await page.$$eval('#inbox tbody tr', (rows) => rows.length);
  await shot('11-approvals-inbox');

  // Reject the first one, with a reason.
  const first = await page.getAttribute('#inbox tbody tr:first-child input[name=ids]', 'value');
  seen.rejectedId = first;
  await page.check('#inbox tbody tr:first-child input[name=ids]');
  await page.fill('#approvals-comment', 'Not this one: duplicate');
  await page.click('#reject-chosen');
  await page.waitForSelector('#notice');
  seen.firstNotice = await page.textContent('#notice');
  seen.left = await page.$$eval('#inbox tbody tr', (rows) => rows.length);
  await shot('12-one-rejected');

  // Approve everything left in one action.
  await page.fill('#all-comment', 'Month-end batch');
  await page.click('#approve-all');
  await page.waitForSelector('#notice');
  seen.secondNotice = await page.textContent('#notice');
  seen.empty = (await page.$('#inbox-empty')) !== null;
  await shot('13-all-approved');
  process.stdout.write(`${JSON.stringify(seen)}\n`);
} catch (e) {
  await page.screenshot({ path: `${shots}/approvals-failure.png`, fullPage: true }).catch(() => {});
  process.stdout.write(`${JSON.stringify({ error: String(e), url: page.url(), seen })}\n`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
