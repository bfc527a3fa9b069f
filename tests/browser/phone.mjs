// The recipient pages of a composed letter on a phone: a 390 px wide viewport (a common
// phone width in CSS pixels), JavaScript disabled. On every step the page must not scroll
// sideways (document.documentElement.scrollWidth <= 390); once the letter is accepted, the
// amount due, the last day to pay and every payment means must be visible; where refusal is
// offered, the page says that refusing does not extinguish the debt. The /verify pages are
// checked at the same width.
//
// Usage: node tests/browser/phone.mjs <landing URL> <mail dir> <total due> <verify report URL>
// Screenshots go to $SCREENSHOT_DIR, by default <repository>/target/browser-screenshots.
// Exits non-zero on the first failed check. Driven by tests/api/browser.rs.

import { readdirSync, readFileSync, statSync, mkdirSync } from 'node:fs';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const WIDTH = 390;
const [landingUrl, mailDir, total, verifyUrl] = process.argv.slice(2);
if (!landingUrl || !mailDir || !total || !verifyUrl) {
  console.error('usage: node phone.mjs <landing URL> <mail dir> <total due> <verify URL>');
  process.exit(2);
}
const here = dirname(fileURLToPath(import.meta.url));
const shots = process.env.SCREENSHOT_DIR ?? resolve(here, '../../target/browser-screenshots');
mkdirSync(shots, { recursive: true });

function check(condition, message) {
  if (!condition) {
    throw new Error(`check failed: ${message}`);
  }
}

/** The code of the newest code mail (the body is plain or quoted-printable UTF-8). */
function newestCode() {
  const mails = readdirSync(mailDir)
    .filter((name) => name.endsWith('.eml'))
    .map((name) => join(mailDir, name))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  for (const path of mails) {
    const raw = readFileSync(path, 'latin1').replace(/=\r?\n/g, '');
    let text = raw;
    const split = raw.indexOf('\r\n\r\n');
    if (split >= 0 && raw.slice(0, split).toLowerCase().includes('base64')) {
      text = Buffer.from(raw.slice(split + 4).replace(/\s+/g, ''), 'base64').toString('utf8');
    }
    const match = text.match(/\) : (\d{6})\b/);
    if (match) {
      return match[1];
    }
  }
  throw new Error(`no code mail in ${mailDir}`);
}

/** No sideways scrolling at 390 px; the widest element is named when there is. */
async function fitsTheWidth(page, step) {
  const { scrollWidth, widest } = await page.evaluate(() => {
    let widest = '';
    let right = 0;
    for (const el of document.querySelectorAll('body *')) {
      const r = el.getBoundingClientRect();
      if (r.right > right) {
        right = r.right;
        widest = `${el.tagName.toLowerCase()}.${el.className} (${Math.round(r.right)} px)`;
      }
    }
    return { scrollWidth: document.documentElement.scrollWidth, widest };
  });
  check(scrollWidth <= WIDTH, `${step}: the page is ${scrollWidth} px wide; widest: ${widest}`);
  await page.screenshot({ path: join(shots, `phone-${step}.png`), fullPage: true });
  console.log(`${step}: ${scrollWidth} px wide`);
}

/** Text as a person reads it: no-break spaces as spaces. */
function plain(s) {
  return s.replace(/[\u00a0\u202f]/g, ' ').replace(/\s+/g, ' ');
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
    javaScriptEnabled: false,
    locale: 'fr-FR',
    viewport: { width: WIDTH, height: 844 },
    deviceScaleFactor: 1,
  });
  page = await context.newPage();

  await page.goto(landingUrl);
  await fitsTheWidth(page, '01-landing-fr');

  await page.getByRole('button', { name: 'Recevoir un code par e-mail' }).click();
  await page.waitForLoadState();
  await fitsTheWidth(page, '02-code-fr');
  await page.getByLabel('Code reçu par e-mail').fill(newestCode());
  await page.getByRole('button', { name: 'Valider le code' }).click();
  await page.waitForLoadState();
  const debt = page.getByText("Refuser la lettre n'éteint pas la dette");
  check(await debt.isVisible(), 'refusing does not extinguish the debt, said where refusal is offered');
  await fitsTheWidth(page, '03-identified-fr');

  await page.getByLabel(/^Je confirme accepter la lettre/).check();
  await page.getByRole('button', { name: 'Accepter la lettre' }).click();
  await page.waitForLoadState();
  const text = plain(await page.locator('main').innerText());
  check(text.includes(`Total à payer ${plain(total)}`) || text.includes(plain(total)), `the total ${total} in: ${text}`);
  const amount = page.locator('dd.amount strong');
  check(await amount.isVisible(), 'the total is visible');
  const box = await amount.boundingBox();
  check(box && box.x >= 0 && box.x + box.width <= WIDTH, `the total lies within the screen: ${JSON.stringify(box)}`);
  check(text.includes('À payer au plus tard le'), 'the last day to pay');
  check(text.includes('FR76 3000 6000 0112 3456 7890 189'), 'the IBAN');
  check(await page.getByRole('link', { name: 'https://pay.example.fr/i/42' }).isVisible(), 'the payment link');
  await fitsTheWidth(page, '04-accepted-fr');

  await page.getByRole('link', { name: /^EN/ }).click();
  const english = plain(await page.locator('main').innerText());
  check(english.includes('Total due') && english.includes('To pay by'), `English: ${english}`);
  await fitsTheWidth(page, '05-accepted-en');

  const report = new URL(verifyUrl);
  await page.goto(`${report.origin}/verify`);
  await fitsTheWidth(page, '06-verify-form');
  await page.goto(verifyUrl);
  check((await page.locator('main').innerText()).includes(report.searchParams.get('letter')), 'the report names the letter');
  await fitsTheWidth(page, '07-verify-report');

  console.log('phone walk: all checks passed');
} catch (error) {
  console.error(error.stack ?? String(error));
  if (page) {
    await page.screenshot({ path: join(shots, 'phone-failure.png'), fullPage: true }).catch(() => {});
  }
  process.exitCode = 1;
} finally {
  await browser.close();
}
