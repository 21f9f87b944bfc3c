// Drives the registry's web UI in headless Chromium (Debian's /usr/bin/chromium, through
// playwright-core): signs in with OpenID Connect at the test provider as a security reviewer,
// finds a server, approves its security review, signs out, signs in with the development form as
// a privacy reviewer and approves the legal/privacy review. Screenshots go to the folder given.
// Prints one JSON line with what it saw; exits non-zero on any failed step.
//
// Usage: node ui-browser.mjs <registry-url> <screenshot-dir> <server> (SWITCHBOARD_NODE_TOOLS set)
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { mkdirSync } from 'node:fs';

const tools = process.env.SWITCHBOARD_NODE_TOOLS;
const require = createRequire(`${tools}/package.json`);
const playwright = await import(pathToFileURL(require.resolve('playwright-core')).href);
const { chromium } = playwright.chromium ? playwright : playwright.default;

const [registry, shots, server] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
const seen = {};
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const visited = [];
page.on('framenavigated', (frame) => { if (frame === page.mainFrame()) visited.push(frame.url()); });
page.on('requestfailed', (request) => visited.push(`failed: ${request.method()} ${request.url()} (${request.failure()?.errorText})`));
try {
  const shot = (name) => page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });

  // Signed out: the catalog sends people to sign in.
  await page.goto(`${registry}/ui/`);
  await page.waitForURL(/\/ui\/login$/);
  await shot('01-sign-in');

  // OpenID Connect: the provider's login and consent pages, then back with a session.
  await page.click('#sign-in-oidc');
  await page.waitForSelector('input[name=login]');
  await page.fill('input[name=login]', 'rita');
  await page.fill('input[name=password]', 'any password');
  await shot('02-provider-login');
  await page.click('button[type=submit]');
  while (!page.url().startsWith(`${registry}/ui/`)) {
    // The consent page (and any further prompt) has one submit button.
    await page.waitForSelector('button[type=submit]', { timeout: 10000 });
    await page.click('button[type=submit]');
    await page.waitForLoadState();
  }
  await page.waitForSelector('#signed-in-as');
  seen.oidcUser = await page.textContent('#signed-in-as');
  await shot('03-catalog');

  // Find the server.
  await page.fill('#search', server);
  await page.click('#search-button');
  await page.waitForSelector('#result-count');
  seen.results = await page.textContent('#result-count');
  seen.links = await page.$$eval('a.server-link', (links) => links.map((a) => a.textContent));
  await shot('04-search');
  await page.click(`a.server-link[href="/ui/servers/${server}"]`);
  await page.waitForSelector('#server-name');
  seen.approvalBefore = await page.textContent('#approval');
  await shot('05-server');

  // The review queue: approve the security review.
  await page.goto(`${registry}/ui/reviews`);
  const security = `#review-${server}\\.1\\.security`;
  await page.fill(`${security} textarea[name=comment]`, 'Threat model reviewed in the browser');
  await shot('06-review-queue');
  await page.click(`${security} button[value=approve]`);
  await page.waitForSelector('#notice');
  seen.notice = await page.textContent('#notice');
  seen.privacyBlocked = await page.textContent(`#review-${server}\\.1\\.legal-privacy`);
  await shot('07-approved');

  // Sign out; sign in with the development form as a privacy reviewer and approve.
  await page.click('button.link');
  await page.waitForURL(/\/ui\/login$/);
  await page.fill('#dev-user', 'priya');
  await page.fill('#dev-groups', 'employees, privacy-reviewers');
  await page.click('#dev-sign-in');
  await page.waitForSelector('#signed-in-as');
  seen.devUser = await page.textContent('#signed-in-as');
  await page.goto(`${registry}/ui/reviews`);
  const privacy = `#review-${server}\\.1\\.legal-privacy`;
  await page.click(`${privacy} button[value=approve]`);
  await page.waitForSelector('#notice');
  seen.secondNotice = await page.textContent('#notice');
  await page.goto(`${registry}/ui/servers/${server}`);
  seen.approvalAfter = await page.textContent('#approval');
  await shot('08-server-approved');
  process.stdout.write(`${JSON.stringify(seen)}\n`);
} catch (e) {
  // Where it stopped, for the failure message and the artifacts.
  await page.screenshot({ path: `${shots}/failure.png`, fullPage: true }).catch(() => {});
  const text = await page.textContent('body').catch(() => '');
  process.stdout.write(`${JSON.stringify({ error: String(e), url: page.url(), visited, text: (text ?? '').slice(0, 600), seen })}\n`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
