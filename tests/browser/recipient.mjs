// Walks the recipient pages in headless Chromium as a person would, without JavaScript of
// our own on the pages: landing -> code by email -> session -> confirmation -> acceptance ->
// sender shown -> document downloaded. Saves a screenshot of each step.
//
// Usage: node tests/browser/recipient.mjs <landing URL> <mail dir>
// Screenshots go to $SCREENSHOT_DIR, by default <repository>/target/browser-screenshots.
// Exits non-zero on the first failed check. Driven by tests/api/browser.rs.

import { readdirSync, readFileSync, statSync, mkdirSync } from 'node:fs';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const [landingUrl, mailDir] = process.argv.slice(2);
if (!landingUrl || !mailDir) {
  console.error('usage: node recipient.mjs <landing URL> <mail dir>');
  process.exit(2);
}
const here = dirname(fileURLToPath(import.meta.url));
const shots = process.env.SCREENSHOT_DIR ?? resolve(here, '../../target/browser-screenshots');
mkdirSync(shots, { recursive: true });

// The sender as deposited by tests/api/helpers.rs; it must stay hidden until the decision
// (CPCE R.53-3).
const SENDER = 'Cabinet Recouvr';

function check(condition, message) {
  if (!condition) {
    throw new Error(`check failed: ${message}`);
  }
}

/** The text body of a single-part mail, with its transfer encoding undone. */
function mailText(raw) {
  const split = raw.indexOf('\r\n\r\n');
  const headers = (split < 0 ? raw : raw.slice(0, split)).toLowerCase();
  const body = split < 0 ? '' : raw.slice(split + 4);
  if (headers.includes('content-transfer-encoding: base64')) {
    return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  }
  if (headers.includes('content-transfer-encoding: quoted-printable')) {
    const bytes = [];
    const joined = body.replace(/=\r?\n/g, '');
    for (let i = 0; i < joined.length; i++) {
      const hex = joined.slice(i + 1, i + 3);
      if (joined[i] === '=' && /^[0-9A-Fa-f]{2}$/.test(hex)) {
        bytes.push(parseInt(hex, 16));
        i += 2;
      } else {
        bytes.push(...Buffer.from(joined[i], 'utf8'));
      }
    }
    return Buffer.from(bytes).toString('utf8');
  }
  return body;
}

/** The code from the newest mail in the directory that carries one. */
function newestCode() {
  const mails = readdirSync(mailDir)
    .filter((name) => name.endsWith('.eml'))
    .map((name) => join(mailDir, name))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  for (const path of mails) {
    const match = mailText(readFileSync(path, 'latin1')).match(/\) : (\d{6})\b/);
    if (match) {
      return match[1];
    }
  }
  throw new Error(`no code mail in ${mailDir}`);
}

async function shot(page, name) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  console.log(`screenshot ${name}.png`);
}

async function heading(page) {
  return (await page.locator('h1').innerText()).trim();
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
let page;
try {
  const context = await browser.newContext({
    acceptDownloads: true,
    javaScriptEnabled: false,
    locale: 'fr-FR',
    viewport: { width: 900, height: 900 },
  });
  page = await context.newPage();

  // 1. The landing page, in French by default, without the sender.
  await page.goto(landingUrl);
  check((await page.getAttribute('html', 'lang')) === 'fr', 'French by default');
  check(
    (await heading(page)) === 'Une lettre recommandée électronique vous attend',
    `landing heading: ${await heading(page)}`,
  );
  check(!(await page.content()).includes(SENDER), 'no sender before the decision');
  check(await page.getByText('heure de Paris').first().isVisible(), 'deadline in Paris time');
  await shot(page, '01-landing-fr');

  // 2. The English switch, then back to French.
  await page.getByRole('link', { name: /^EN/ }).click();
  check((await page.getAttribute('html', 'lang')) === 'en', 'English after the switch');
  check(
    (await heading(page)) === 'An electronic registered letter awaits you',
    `English heading: ${await heading(page)}`,
  );
  check(!(await page.content()).includes(SENDER), 'no sender in English either');
  await shot(page, '02-landing-en');
  await page.goto(landingUrl);
  check((await page.getAttribute('html', 'lang')) === 'en', 'the language is remembered');
  await page.getByRole('link', { name: /^FR/ }).click();
  check((await page.getAttribute('html', 'lang')) === 'fr', 'back to French');

  // 3. Ask for a code.
  await page.getByRole('button', { name: 'Recevoir un code par e-mail' }).click();
  await page.waitForLoadState();
  check((await heading(page)) === 'Saisir votre code', `code page: ${await heading(page)}`);
  const input = page.getByLabel('Code reçu par e-mail');
  check((await input.getAttribute('inputmode')) === 'numeric', 'numeric keyboard');
  check((await input.getAttribute('autocomplete')) === 'one-time-code', 'one-time-code');
  await shot(page, '03-code-fr');

  // 4. A wrong code is explained on the form, then the code from the mail opens a session.
  const code = newestCode();
  await input.fill(code === '000000' ? '111111' : '000000');
  await page.getByRole('button', { name: 'Valider le code' }).click();
  await page.waitForLoadState();
  const alert = page.getByRole('alert');
  check((await alert.innerText()).includes('Il vous reste 4 essai(s)'), 'attempts left shown');
  check((await input.getAttribute('aria-invalid')) === 'true', 'the field is marked invalid');
  await shot(page, '04-wrong-code-fr');
  await input.fill(code);
  await page.getByRole('button', { name: 'Valider le code' }).click();
  await page.waitForLoadState();
  check(new URL(page.url()).pathname === new URL(landingUrl).pathname, 'back on the letter');
  const accept = page.getByRole('button', { name: 'Accepter la lettre' });
  check(await accept.isVisible(), 'the accept form is offered once identified');
  check(
    await page.getByRole('button', { name: 'Refuser la lettre' }).isVisible(),
    'the refuse form is offered too',
  );
  check(!(await page.content()).includes(SENDER), 'still no sender before the decision');
  await shot(page, '05-identified-fr');

  // 5. Without the confirmation the browser does not even send the form (the server
  //    refuses it too: tests/api/pages.rs).
  await accept.click();
  await page.waitForTimeout(300);
  check(await accept.isVisible(), 'no decision without the confirmation');
  check(!(await page.content()).includes(SENDER), 'nothing decided without the confirmation');
  await shot(page, '06-confirmation-required-fr');

  // 6. Tick the confirmation and accept.
  await page.getByLabel(/^Je confirme accepter la lettre/).check();
  await shot(page, '07-confirmed-fr');
  await accept.click();
  await page.waitForLoadState();
  check(
    (await heading(page)) === 'Vous avez accepté cette lettre recommandée électronique',
    `after acceptance: ${await heading(page)}`,
  );
  check(await page.getByText(SENDER).first().isVisible(), 'the sender is shown');
  check(await page.getByText('envoi@recouvr.fr').isVisible(), 'the sender email is shown');
  await shot(page, '08-accepted-fr');

  // 7. Download the document: a PDF arrives.
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: /^Télécharger / }).first().click(),
  ]);
  const saved = join(shots, 'downloaded.pdf');
  await download.saveAs(saved);
  const pdf = readFileSync(saved);
  check(pdf.subarray(0, 5).toString('latin1') === '%PDF-', 'the download is a PDF');
  console.log(`downloaded ${download.suggestedFilename()} (${pdf.length} bytes)`);

  // 8. The same page in English.
  await page.getByRole('link', { name: /^EN/ }).click();
  check(
    (await heading(page)) === 'You accepted this electronic registered letter',
    `English after acceptance: ${await heading(page)}`,
  );
  check(await page.getByText(SENDER).first().isVisible(), 'the sender is shown in English');
  await shot(page, '09-accepted-en');

  console.log('browser walk: all checks passed');
} catch (error) {
  console.error(error.stack ?? String(error));
  if (page) {
    await page.screenshot({ path: join(shots, 'failure.png'), fullPage: true }).catch(() => {});
  }
  process.exitCode = 1;
} finally {
  await browser.close();
}
