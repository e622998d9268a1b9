// Browser tests of what listeners ask for around the music: the share link
// (the address reproduces what plays; a bad link gets the defaults and a
// note), the sleep timer (the stream fades and ends, the page says so) and
// the download button (a file, with progress).

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { collectErrors, launchBrowser } from './browser.mjs';
import { ARTIFACTS, AuralisServer, BIN, freePort } from './server.mjs';

const TIMEOUT_MS = 60000;
const STEP_MS = 15000;

describe('timer, share link, download', { timeout: TIMEOUT_MS }, () => {
  let server;
  let browser;
  const errors = [];

  /** A fresh context per test: nothing saved by one test leaks into the next. */
  async function open(query = '') {
    const context = await browser.newContext({ acceptDownloads: true });
    const page = await context.newPage();
    errors.push(collectErrors(page));
    await page.goto(`${server.url}${query}`);
    await page.waitForFunction(() => document.querySelectorAll('#preset option').length >= 6, null, {
      timeout: STEP_MS,
    });
    return page;
  }

  before(async () => {
    server = new AuralisServer(BIN, await freePort(), join(ARTIFACTS, 'listener-server.log'));
    await server.start();
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('a link opens the same music and the address follows what plays', async () => {
    const page = await open('?preset=calm&key=F%23&mode=lydian&bpm=70&intensity=0.3&seed=42');
    assert.equal(await page.inputValue('#preset'), 'calm');
    assert.equal(await page.inputValue('#key'), 'F#');
    assert.equal(await page.inputValue('#mode'), 'lydian');
    assert.equal(await page.inputValue('#bpm'), '70');
    assert.equal(await page.isHidden('#link-note'), true);
    await page.click('#start');
    await page.waitForFunction(() => window.auralis.stats().state === 'playing', null, { timeout: STEP_MS });
    const p = (await page.evaluate(() => window.auralis.stats())).params;
    assert.deepEqual([p.preset, p.key, p.mode, p.bpm, p.intensity, p.seed], ['calm', 'F#', 'lydian', 70, 0.3, 42]);
    await page.selectOption('#key', 'G');
    await page.waitForFunction(() => new URL(location.href).searchParams.get('key') === 'G', null, {
      timeout: STEP_MS,
    });
    const url = new URL(page.url());
    assert.equal(url.searchParams.get('seed'), '42');
    assert.equal(url.searchParams.get('mode'), 'lydian');
    await page.click('#share');
    await page.waitForFunction(() => document.getElementById('share-note').textContent !== '', null, {
      timeout: STEP_MS,
    });
    assert.match(await page.textContent('#share-note'), /Link copied|Copy this link: http/);
    await page.close();
  });

  test('bad values in a link fall back to the defaults with a visible note', async () => {
    const page = await open('?bpm=500&key=H&seed=-3&mode=dorian');
    assert.equal(await page.isVisible('#link-note'), true);
    const note = await page.textContent('#link-note');
    assert.match(note, /bpm=500/);
    assert.match(note, /key=H/);
    assert.match(note, /seed=-3/);
    assert.equal(await page.inputValue('#bpm'), '60');
    assert.equal(await page.inputValue('#key'), 'D');
    const url = new URL(page.url());
    assert.equal(url.searchParams.get('bpm'), '60', 'the address now says what plays');
    await page.close();
  });

  test('the timer shows the time left, then the music fades and the stream ends', async () => {
    const page = await open();
    await page.click('#start');
    await page.waitForFunction(() => window.auralis.stats().state === 'playing', null, { timeout: STEP_MS });
    await page.selectOption('#timer', 'custom');
    await page.fill('#timer-custom', '0.1');
    await page.dispatchEvent('#timer-custom', 'change');
    assert.match(await page.textContent('#timer-left'), /^0:0[4-6] left$/);
    await page.waitForFunction(() => window.auralis.stats().state === 'ended', null, { timeout: STEP_MS });
    assert.equal(await page.textContent('#timer-left'), 'ended');
    assert.equal(await page.getAttribute('#start', 'aria-pressed'), 'false');
    assert.equal(await page.inputValue('#timer'), '');
    await page.close();
  });

  test('the download button saves a file and shows progress', async () => {
    const page = await open('?preset=night&seed=3');
    await page.fill('#download-minutes', '0.05');
    const [download] = await Promise.all([page.waitForEvent('download', { timeout: STEP_MS }), page.click('#download')]);
    assert.match(download.suggestedFilename(), /^auralis-night-.*seed3-0\.05min\.wav$/);
    assert.match(await page.textContent('#download-note'), /^saved /);
    assert.equal(await page.$eval('#download-progress', (el) => el.value), 1);
    const bytes = Number(await page.getAttribute('#download-note', 'data-bytes'));
    // The whole bars nearest 3 s at night's tempo, then the 6 s tail, as 16-bit stereo.
    assert.ok(bytes > 44 + 6 * 44100 * 4 && bytes % 4 === 0, `${bytes} bytes`);
    await page.fill('#download-minutes', '61');
    await page.click('#download');
    await page.waitForFunction(() => /failed/.test(document.getElementById('download-note').textContent), null, {
      timeout: STEP_MS,
    });
    assert.match(await page.textContent('#download-note'), /at most 60/);
    await page.close();
  });

  test('no console errors', () => {
    assert.deepEqual(errors.flat(), []);
  });
});
