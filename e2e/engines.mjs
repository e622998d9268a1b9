// The player's smoke test in the other engines: Firefox (Debian's
// firefox-esr, driven by puppeteer-core over WebDriver BiDi) and WebKit
// (Debian's WebKitWebDriver with MiniBrowser, driven by selenium-webdriver
// under xvfb-run). Neither browser is downloaded.
//
//   AURALIS_BIN=../target/release/auralis node engines.mjs
//
// Each engine: the page loads, Start plays (the worklet's frames advance at
// the AudioContext's own clock rate), a control is acknowledged, and the
// page logs no error. An engine that cannot open an audio output on this
// machine must show "audio unavailable" with the stream URL and a retry;
// its playing checks are then reported as skipped, with the reason, never
// passed. Firefox runs twice: as it finds the machine (with no sound device
// it cannot play, which tests the "audio unavailable" path for real), and
// with a private PulseAudio server whose null sink is its output device.
// Results go to e2e/artifacts/engines.json.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  FIREFOX,
  firefox,
  MINIBROWSER,
  missing,
  PULSEAUDIO,
  STEP_TIMEOUT_MS,
  waitFor,
  webkit,
  WEBKIT_DRIVER,
  within,
  XVFB_RUN,
} from './drivers.mjs';
import { ARTIFACTS, AuralisServer, BIN, freePort } from './server.mjs';

const SAMPLE_RATE = 44100;
/** Each engine's whole run, launch included, stays under this. */
const ENGINE_TIMEOUT_MS = 90000;

const stats = (b) => b.eval(() => window.auralis.stats());

/** Frames played per second of the AudioContext's clock, over `seconds` of
 * it: one report's two numbers, so a busy machine does not change it. */
async function playbackRate(b, seconds) {
  const a = await stats(b);
  await waitFor(b, (t) => window.auralis.stats().audioTime >= t, a.audioTime + seconds, `${seconds} s of audio clock`);
  const z = await stats(b);
  return (z.framesPlayed - a.framesPlayed) / (z.audioTime - a.audioTime);
}

/** Launches the browser, loads the page and presses Start, until it plays
 * or says why it cannot. A page that stops answering fails here: Firefox on
 * PulseAudio froze after Start in 14 of 20 launches while the page read
 * `outputLatency` (see web/player.js), so a freeze is a bug, not a retry. */
async function startPlayer(launch) {
  const b = await launch();
  try {
    await within(b.goto(server.url), STEP_TIMEOUT_MS, 'loading the page');
    await waitFor(b, () => !!window.auralis && document.querySelectorAll('#preset option').length >= 6, null, 'the page and its presets');
    await within(b.click('#start'), STEP_TIMEOUT_MS, 'a click on Start');
    await waitFor(b, () => ['playing', 'error'].includes(window.auralis.stats().state), null, 'playing or an error');
    return b;
  } catch (e) {
    await b.close();
    throw e;
  }
}

const results = {};
let server;

describe('the player in other engines', () => {
  before(async () => {
    server = new AuralisServer(BIN, await freePort(), join(ARTIFACTS, 'server-engines.log'));
    await server.start();
  });

  after(async () => {
    writeFileSync(join(ARTIFACTS, 'engines.json'), `${JSON.stringify(results, null, 2)}\n`);
    await server?.stop();
  });

  for (const [name, launch, skip] of [
    ['firefox', firefox, missing(FIREFOX)],
    ['firefox-pulse', () => firefox({ pulse: true }), missing(FIREFOX, PULSEAUDIO)],
    ['webkit', webkit, missing(WEBKIT_DRIVER, MINIBROWSER, XVFB_RUN)],
  ]) {
    test(`${name}: loads, plays or says audio is unavailable, acknowledges a control`, { skip, timeout: ENGINE_TIMEOUT_MS }, async (t) => {
      const started = Date.now();
      const result = { audio: null };
      results[name] = result;
      const b = await startPlayer(launch);
      try {
        const shown = await b.eval(() => ({
          state: window.auralis.stats().state,
          text: document.getElementById('state').textContent,
          help: !document.getElementById('audio-unavailable').hidden,
          url: document.getElementById('audio-unavailable-url').getAttribute('href'),
        }));
        if (shown.state === 'error') {
          result.audio = 'unavailable';
          result.reason = shown.text;
          assert.match(shown.text, /^audio unavailable: /);
          assert.ok(shown.help, 'the audio-unavailable help is shown');
          assert.match(shown.url, /\/listen\.opus\?/);
          assert.equal((await stats(b)).connection, 'idle', 'no stream is opened without audio');
          t.diagnostic(`${name}: ${shown.text}`);
          await t.test('plays and acknowledges a control', { skip: `${name} has no audio output here: ${shown.text}` }, () => {});
        } else {
          result.audio = 'playing';
          await t.test('plays at the AudioContext clock rate', async () => {
            const s = await stats(b);
            assert.equal(s.contextState, 'running');
            const rate = await playbackRate(b, 2);
            result.framesPerSecond = Math.round(rate);
            assert.ok(Math.abs(rate - SAMPLE_RATE) / SAMPLE_RATE < 0.1, `played ${rate.toFixed(0)} frames per audio-clock second`);
          });
          await t.test('acknowledges a control', async () => {
            await b.eval(() => {
              const el = document.getElementById('intensity');
              el.value = '0.8';
              el.dispatchEvent(new Event('input', { bubbles: true }));
              el.dispatchEvent(new Event('change', { bubbles: true }));
            });
            await waitFor(b, () => document.getElementById('now-playing').dataset.intensity === '0.8', null, 'the params ack');
            // The change is spliced into what this player buffered, and heard.
            await waitFor(
              b,
              () => window.auralis.stats().splices >= 1 && window.auralis.latency().controlLatencyMs.length >= 1,
              null,
              'the change spliced in and heard',
            );
            const s = await stats(b);
            Object.assign(result, { underruns: s.underruns, splices: s.splices, controlLatencyMs: Math.round(s.controlLatencyMs) });
            assert.equal(s.seqJumps, 0, 'a splice is not a jump');
          });
        }
        assert.deepEqual(await b.errors(), [], `${name} logged errors`);
      } finally {
        await b.close();
        result.seconds = Math.round((Date.now() - started) / 100) / 10;
      }
    });
  }
});
