// Browser tests of the HTTP streams: Chromium's own <audio> element plays
// /listen.opus (its Ogg demuxer and Opus decoder, not our worklet), for a
// fresh session and for a late joiner of a running room, and the page's
// "Listen anywhere" section offers the URLs and the background-friendly mode.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { collectErrors, launchBrowser } from './browser.mjs';
import { ARTIFACTS, AuralisServer, BIN, freePort } from './server.mjs';

const TIMEOUT_MS = 60000;
const STEP_MS = 15000;

/** Resolves once the media element `target` ('#id' of an element, else the
 * name of a window property) has started playing, and returns how far it
 * advanced in `seconds` of wall time after that. No eval: the page's CSP
 * forbids it. */
async function advances(page, target, seconds) {
  await page.waitForFunction(
    (t) => {
      const a = t.startsWith('#') ? document.getElementById(t.slice(1)) : window[t];
      return a && !a.paused && a.readyState >= 3 && a.currentTime > 0;
    },
    target,
    { timeout: STEP_MS, polling: 100 },
  );
  return page.evaluate(
    async ([t, seconds]) => {
      const a = t.startsWith('#') ? document.getElementById(t.slice(1)) : window[t];
      const t0 = a.currentTime;
      await new Promise((r) => setTimeout(r, seconds * 1000));
      return a.currentTime - t0;
    },
    [target, seconds],
  );
}

describe('listen anywhere (HTTP streams)', { timeout: TIMEOUT_MS }, () => {
  let server;
  let browser;
  let page;
  let errors;

  before(async () => {
    server = new AuralisServer(BIN, await freePort(), join(ARTIFACTS, 'listen-server.log'));
    await server.start();
    browser = await launchBrowser();
    page = await (await browser.newContext()).newPage();
    errors = collectErrors(page);
    await page.goto(server.url);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('the page offers stream URLs for the current settings', async () => {
    const url = new URL(await page.inputValue('#stream-url'));
    assert.equal(url.pathname, '/listen.opus');
    assert.equal(url.searchParams.get('preset'), 'focus');
    assert.equal(await page.getAttribute('#open-url', 'href'), url.href);
    const wav = new URL(await page.getAttribute('#wav-url', 'href'));
    assert.equal(wav.pathname, '/listen.wav');
    await page.selectOption('#key', 'F#');
    assert.equal(new URL(await page.inputValue('#stream-url')).searchParams.get('key'), 'F#');
    // The server accepts exactly what the page offers.
    const head = await page.evaluate(async (u) => (await fetch(u, { method: 'HEAD' })).status, url.href);
    assert.equal(head, 200);
  });

  test('an <audio> element plays /listen.opus at real time', async () => {
    await page.evaluate(() => {
      window.plain = new Audio('/listen.opus?preset=calm');
      return window.plain.play();
    });
    const advanced = await advances(page, 'plain', 3);
    assert.ok(advanced > 2.4 && advanced < 3.6, `currentTime advanced ${advanced} s in 3 s`);
    await page.evaluate(() => window.plain.pause());
  });

  test('a late joiner of a room plays from its first page', async () => {
    await page.evaluate(() => {
      window.first = new Audio('/listen.opus?room=e2e');
      return window.first.play();
    });
    await advances(page, 'first', 1);
    await new Promise((r) => setTimeout(r, 1500));
    await page.evaluate(() => {
      window.late = new Audio('/listen.opus?room=e2e');
      return window.late.play();
    });
    const advanced = await advances(page, 'late', 3);
    assert.ok(advanced > 2.4 && advanced < 3.6, `late joiner advanced ${advanced} s in 3 s`);
    await page.evaluate(() => {
      window.first.pause();
      window.late.pause();
    });
  });

  test('background-friendly mode plays through <audio> with Media Session', async () => {
    await page.check('#background-mode');
    await page.click('#start');
    const advanced = await advances(page, '#background-audio', 2);
    assert.ok(advanced > 1.5, `background audio advanced ${advanced} s in 2 s`);
    const session = await page.evaluate(() => ({
      title: navigator.mediaSession.metadata?.title,
      artist: navigator.mediaSession.metadata?.artist,
      src: document.getElementById('background-audio').src,
      stats: window.auralis.stats(),
    }));
    assert.equal(session.title, 'Auralis');
    assert.equal(session.artist, 'focus');
    assert.match(session.src, /\/listen\.opus\?preset=focus/);
    assert.equal(session.stats.state, 'playing');
    assert.equal(session.stats.connection, 'idle', 'no WebSocket in this mode');
    assert.match(await page.textContent('#now-playing'), /^focus · [A-G][#b]? dorian · \d+ BPM/, 'shows what plays');
    assert.equal(await page.isVisible('#meter'), false, 'no empty meter');
    await page.click('#start');
    assert.equal(await page.evaluate(() => document.getElementById('background-audio').paused), true);
    assert.equal(await page.getAttribute('#start', 'aria-pressed'), 'false');
  });

  test('no console errors', () => {
    assert.deepEqual(errors, []);
  });
});
