// Drives the web chat in headless Chromium (Debian's, through playwright-core): signs in with the
// development form, asks one question and waits for the answer to stream in after its inline
// tool call; in `approve` mode it first approves the call's inline approval card, in
// `input:<value>` mode it first answers the tool's inline question with <value>. Screenshots go
// to the folder given. Prints one JSON line with what it saw; exits non-zero on any failed step.
//
// Usage: node ui-chat.mjs <chat-url> <screenshot-dir> <user> <groups> <question> <answer|approve|input:VALUE>
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { mkdirSync } from 'node:fs';

const tools = process.env.SWITCHBOARD_NODE_TOOLS;
const require = createRequire(`${tools}/package.json`);
const playwright = await import(pathToFileURL(require.resolve('playwright-core')).href);
const { chromium } = playwright.chromium ? playwright : playwright.default;

const [chat, shots, user, groups, question, mode] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const seen = {};
const errors = [];
page.on('pageerror', (e) => errors.push(String(e)));
page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
const shot = (name) => page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
try {
  await page.goto(`${chat}/chat`);
  await page.waitForSelector('#sign-in');
  await page.fill('input[name=user]', user);
  await page.fill('input[name=groups]', groups);
  await page.click('#sign-in');
  await page.waitForSelector('#composer');
  seen.user = await page.textContent('#user');
  await page.fill('#message', question);
  await page.click('#send');
  if (mode === 'approve') {
    await page.waitForSelector('.card.approval', { timeout: 30000 });
    seen.approval = await page.textContent('.card.approval .status');
    await shot(`${user}-1-approval`);
    await page.click('.card.approval .approve');
    await page.waitForFunction(() => document.querySelector('.card.approval .outcome')?.textContent, null, { timeout: 30000 });
    seen.decided = await page.textContent('.card.approval .outcome');
  }
  if (mode.startsWith('input:')) {
    await page.waitForSelector('.card.input', { timeout: 30000 });
    seen.question = await page.textContent('.card.input .status');
    await page.fill('.card.input input', mode.slice('input:'.length));
    await shot(`${user}-1-question`);
    await page.click('.card.input .accept');
    await page.waitForFunction(() => document.querySelector('.card.input .outcome')?.textContent, null, { timeout: 30000 });
    seen.answered = await page.textContent('.card.input .outcome');
  }
  await page.waitForSelector('.card.tool-call .result', { timeout: 60000 });
  seen.tool = await page.getAttribute('.card.tool-call', 'data-tool');
  seen.status = await page.textContent('.card.tool-call .status');
  seen.result = await page.textContent('.card.tool-call .result');
  await page.waitForFunction(
    () => [...document.querySelectorAll('.message.assistant')].some((m) => m.textContent.startsWith('Here is what I found')),
    null,
    { timeout: 60000 },
  );
  seen.answer = await page.$$eval('.message.assistant', (ms) => ms.map((m) => m.textContent).find((t) => t.startsWith('Here is what I found')));
  seen.tools = await page.textContent('.tools');
  await shot(`${user}-2-answer`);
  seen.errors = errors;
  process.stdout.write(`${JSON.stringify(seen)}\n`);
} catch (e) {
  await page.screenshot({ path: `${shots}/${user}-failure.png`, fullPage: true }).catch(() => {});
  const text = await page.textContent('body').catch(() => '');
  process.stdout.write(`${JSON.stringify({ error: String(e), url: page.url(), seen, errors, text })}\n`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
