// Browser tests of the Auralis web player: the real server binary, the real
// player page, real headless Chromium with real Web Audio.
//
//   AURALIS_BIN=../target/release/auralis node run.mjs
//
// Writes e2e/artifacts/{player.png,latency.json,server.log} and exits
// non-zero if any test fails.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { percentile } from '../web/measure.js';
import { collectErrors, launchBrowser } from './browser.mjs';
import { ARTIFACTS, AuralisServer, BIN, freePort } from './server.mjs';
import './units.mjs';
import './listen.mjs';
import './listener.mjs';
import './network.mjs';

const SAMPLE_RATE = 44100;
/** The whole run must finish well inside two minutes; this is the backstop. */
const RUN_TIMEOUT_MS = 240000;
const STEP_TIMEOUT_MS = 15000;
const CONTROL_SAMPLES = 5;
const CONTROL_SPACING_MS = 1500;
/** The tempos whose control latency issue 15 sets goals for. */
const CONTROL_TEMPOS = [90, 60];

let server;
let browser;
let context;
let page;
const results = {};

const watchdog = setTimeout(() => {
  console.error(`e2e: the run exceeded ${RUN_TIMEOUT_MS} ms; aborting`);
  server?.child?.kill('SIGKILL');
  process.exit(2);
}, RUN_TIMEOUT_MS);
watchdog.unref();

/** Chromium's own report of a refused WebSocket: expected, and only that,
 * while the server is down for the restart test. */
let serverDown = false;
function expectedError(text) {
  return (
    serverDown &&
    /^WebSocket connection to 'ws:\/\/127\.0\.0\.1:\d+\/ws\/stream\?[^']*' failed: .*ERR_CONNECTION_REFUSED/.test(text)
  );
}

const stats = (p = page) => p.evaluate(() => window.auralis.stats());

/** Waits for a condition in the page; on timeout says what the player's
 * state was, which is what one needs to know to debug it. */
async function waitInPage(p, fn, arg, what, timeout = STEP_TIMEOUT_MS) {
  try {
    await p.waitForFunction(fn, arg, { timeout, polling: 50 });
  } catch (e) {
    const s = await stats(p).catch(() => 'unavailable');
    throw new Error(`timed out waiting for ${what}; player: ${JSON.stringify(s)}`, { cause: e });
  }
}

/** Frames the worklet played per second of the audio clock, over about
 * `ms` of it: both numbers come from the same worklet report, so a busy
 * machine that slows the page or the audio thread does not change the
 * answer; only frames the player failed to play (underruns) do. */
function playbackRate(p, ms) {
  return p.evaluate(async (ms) => {
    const a = window.auralis.stats();
    await new Promise((resolve) => {
      const poll = () => {
        const now = window.auralis.stats();
        if (now.audioTime - a.audioTime >= ms / 1000) resolve();
        else setTimeout(poll, 20);
      };
      poll();
    });
    const b = window.auralis.stats();
    return (b.framesPlayed - a.framesPlayed) / (b.audioTime - a.audioTime);
  }, ms);
}

async function openPlayer(query = '') {
  const p = await context.newPage();
  const errors = collectErrors(p, expectedError);
  await p.goto(`${server.url}${query}`);
  return { p, errors };
}

async function startPlaying(p) {
  await p.click('#start');
  await waitInPage(p, () => window.auralis.stats().state === 'playing', null, 'playback to start');
}

async function setRange(p, id, value) {
  await p.$eval(
    id,
    (el, v) => {
      el.value = String(v);
      el.dispatchEvent(new Event('input', { bubbles: true }));
      el.dispatchEvent(new Event('change', { bubbles: true }));
    },
    value,
  );
}

describe('auralis web player', { timeout: RUN_TIMEOUT_MS }, () => {
  const allErrors = [];

  before(async () => {
    server = new AuralisServer(BIN, await freePort(), join(ARTIFACTS, 'server.log'));
    await server.start();
    browser = await launchBrowser();
    context = await browser.newContext();
    const opened = await openPlayer();
    page = opened.p;
    allErrors.push(opened.errors);
  });

  after(async () => {
    if (Object.keys(results).length > 0) {
      writeFileSync(join(ARTIFACTS, 'latency.json'), `${JSON.stringify(results, null, 2)}\n`);
    }
    await browser?.close();
    await server?.stop();
    clearTimeout(watchdog);
  });

  test('the page loads with presets, attribution and controls', async () => {
    assert.equal(await page.title(), 'Auralis — ambient music, composed forever');
    await waitInPage(page, () => document.querySelectorAll('#preset option').length >= 6, null, 'presets from /api/status');
    const attribution = await page.textContent('#attribution');
    assert.match(attribution, /licence/i, attribution);
    assert.equal(await page.inputValue('#key'), 'D');
    assert.equal(await page.inputValue('#mode'), 'dorian');
    assert.equal((await stats()).state, 'idle');
  });

  test('Start runs the AudioContext and plays', async () => {
    await startPlaying(page);
    const s = await stats();
    assert.equal(s.contextState, 'running');
    assert.equal(s.sampleRate, SAMPLE_RATE);
    assert.equal(s.params.key, 'D');
    assert.match(await page.textContent('#state'), /playing/);
  });

  test('the worklet plays at about real time', async () => {
    const rate = await playbackRate(page, 3000);
    results.framesPerSecond = Math.round(rate);
    assert.ok(Math.abs(rate - SAMPLE_RATE) / SAMPLE_RATE < 0.15, `played ${rate.toFixed(0)} frames/s`);
  });

  test('buffer health is shown', async () => {
    const s = await stats();
    assert.ok(s.bufferMs > 0, `buffer ${s.bufferMs} ms`);
    assert.ok([1, 2, 3, 4].includes(s.tier), `tier ${s.tier}`);
    assert.ok(s.jitterMs >= 0);
    assert.match(await page.textContent('#buffer-depth'), /^\d+ \/ \d+ ms$/);
    assert.match(await page.textContent('#tier'), /^[1-4] \(\d+ ms\)$/);
    assert.match(await page.textContent('#jitter'), /^\d+\.\d ms$/);
    assert.match(await page.textContent('#underruns'), /^\d+$/);
  });

  test('a control change is acknowledged, shown and timed', async () => {
    await page.selectOption('#key', 'F');
    await setRange(page, '#bpm', 90);
    await waitInPage(
      page,
      () => {
        const el = document.getElementById('now-playing');
        return el.dataset.key === 'F' && el.dataset.bpm === '90';
      },
      null,
      'the params ack in #now-playing',
    );
    assert.match(await page.textContent('#now-playing'), /F dorian · 90 BPM/);
    await waitInPage(page, () => window.auralis.latency().controlLatencyMs.length >= 2, null, 'both changes to be heard');
    const s = await stats();
    assert.equal(typeof s.controlLatencyMs, 'number');
    assert.ok(s.controlLatencyMs > 0 && s.controlLatencyMs < 5000, `control latency ${s.controlLatencyMs}`);
    assert.match(await page.textContent('#control-latency'), /^\d+ ms$/);
  });

  test('latency is measured: end to end and control to audible', async () => {
    const keys = ['G', 'A', 'C', 'E', 'F'];
    // Key changes at both tempos of issue 15's goal: with the splice, what
    // is heard no longer waits for the beat, so the tempo must not matter.
    const byBpm = {};
    for (const bpm of CONTROL_TEMPOS) {
      await setRange(page, '#bpm', bpm);
      await waitInPage(page, (b) => document.getElementById('now-playing').dataset.bpm === String(b), bpm, `the ack of ${bpm} BPM`);
      const values = [];
      for (let i = 0; i < CONTROL_SAMPLES; i++) {
        const heard = await page.evaluate(() => window.auralis.latency().controlLatencyMs.length);
        const sentAt = Date.now();
        await page.selectOption('#key', keys[i % keys.length]);
        await waitInPage(page, (n) => window.auralis.latency().controlLatencyMs.length > n, heard, `control change ${i + 1} at ${bpm} BPM to be heard`);
        values.push(await page.evaluate((n) => window.auralis.latency().controlLatencyMs[n], heard));
        // Spacing between changes, so each lands on its own beat.
        const rest = CONTROL_SPACING_MS - (Date.now() - sentAt);
        if (rest > 0 && i < CONTROL_SAMPLES - 1) await page.waitForTimeout(rest);
      }
      byBpm[bpm] = { valuesMs: values.map(round), p50Ms: round(percentile(values, 50)), p95Ms: round(percentile(values, 95)) };
    }
    const lat = await page.evaluate(() => window.auralis.latency());
    const now = await stats();
    const control = lat.controlLatencyMs;
    const changes = CONTROL_TEMPOS.length * (CONTROL_SAMPLES + 1);
    // Each change was spliced into the buffered audio (the server replays
    // the chunks from just after the playhead), and the replay is not
    // counted as chunks missing or repeated.
    assert.ok(now.splices >= changes - 1, `${now.splices} of ${changes} changes spliced`);
    assert.equal(now.seqJumps, 0, 'a splice is not a jump');
    assert.ok(lat.latencyMs.length >= 20, `${lat.latencyMs.length} latency samples`);
    assert.ok(control.length >= changes, `${control.length} control samples`);
    Object.assign(results, {
      clock: { offsetMs: round(now.clockOffsetMs), rttMs: round(now.rttMs) },
      buffer: { depthMs: round(now.bufferMs), targetMs: round(now.targetMs), jitterMs: round(now.jitterMs) },
      endToEnd: {
        samples: lat.latencyMs.length,
        p50Ms: round(lat.latencyP50),
        p95Ms: round(lat.latencyP95),
      },
      controlToAudible: {
        splices: now.splices,
        samples: control.length,
        valuesMs: control.map(round),
        p50Ms: round(lat.controlP50),
        p95Ms: round(lat.controlP95),
        byBpm,
      },
    });
    const tempos = CONTROL_TEMPOS.map((b) => `${b} BPM p50 ${byBpm[b].p50Ms} / p95 ${byBpm[b].p95Ms} ms`).join(', ');
    console.log(
      `latency: end-to-end p50 ${results.endToEnd.p50Ms} ms, p95 ${results.endToEnd.p95Ms} ms ` +
        `(${lat.latencyMs.length} chunks); control-to-audible p95 ${results.controlToAudible.p95Ms} ms ` +
        `(${control.length} changes; key changes ${tempos})`,
    );
    for (const v of lat.latencyMs) assert.ok(v > 0 && v < 3000, `end-to-end latency ${v} ms`);
  });

  test('the server receives the client stats', async () => {
    const deadline = Date.now() + STEP_TIMEOUT_MS;
    let metrics;
    for (;;) {
      metrics = await (await fetch(`${server.url}api/metrics`)).json();
      if (metrics.client_latency_ms.count > 0 && metrics.client_control_latency_ms.count > 0) break;
      assert.ok(Date.now() < deadline, `stats never reached the server: ${JSON.stringify(metrics)}`);
      await page.waitForTimeout(250);
    }
    results.serverView = {
      clientLatencyMs: metrics.client_latency_ms,
      clientControlLatencyMs: metrics.client_control_latency_ms,
    };
  });

  test('a screenshot of the player is saved', async () => {
    await page.screenshot({ path: join(ARTIFACTS, 'player.png'), fullPage: true });
  });

  test('main-thread stalls: underruns, a deeper tier, the warning', async () => {
    // Each stall outlasts what is buffered by 2.5 s, so it drains the buffer
    // whatever the tier. The depth is read only once the burst that follows
    // the previous stall has reached the worklet (a second of audio played
    // since the underrun showed): the first report after a stall can come
    // before the burst, and a stall sized from it may not drain the buffer.
    const MARGIN_MS = 2500;
    let maxBufferMs = 0;
    // Six within a minute: the page warns past five.
    for (let i = 1; i <= 6; i++) {
      const { underruns, bufferMs } = await stats();
      await page.evaluate((ms) => {
        const until = performance.now() + ms;
        while (performance.now() < until);
      }, bufferMs + MARGIN_MS);
      await waitInPage(
        page,
        (n) => {
          const s = window.auralis.stats();
          return s.underruns > n && s.state === 'playing';
        },
        underruns,
        `underrun ${i}`,
      );
      const { framesPlayed } = await stats();
      await waitInPage(
        page,
        (from) => window.auralis.stats().framesPlayed > from,
        framesPlayed + SAMPLE_RATE,
        `a second of audio after underrun ${i}`,
      );
      const s = await stats();
      maxBufferMs = Math.max(maxBufferMs, s.bufferMs);
      if (i === 1) assert.ok(s.tier >= 2, `the burst after a stall raises the tier: ${JSON.stringify(s)}`);
    }
    // The burst after each stall is kept (no skip) and played down by the
    // rate control; only the 6 s hard cap bounds it.
    assert.ok(maxBufferMs <= 6000, `buffer ${maxBufferMs} ms`);
    assert.equal(await page.isVisible('#warning'), true);
    assert.match(await page.textContent('#warning'), /\d+ underruns in the last minute/);
  });

  test('after a server crash the player reconnects and plays again', async () => {
    const before = await stats();
    serverDown = true;
    await server.kill();
    // Down long enough for one refused attempt, so the backoff really runs.
    await waitInPage(
      page,
      () => {
        const s = window.auralis.stats();
        return s.state === 'reconnecting' && s.attempt >= 2;
      },
      null,
      'a second reconnect attempt',
    );
    // Retries come quickly at first (150 ms, 300 ms, …): the page may be
    // between two of them.
    assert.match(await page.textContent('#state'), /^(reconnecting in \d+\.\d s|connecting) \(attempt \d+\/10\)/);
    await server.start();
    await waitInPage(page, () => window.auralis.stats().reconnects >= 1, null, 'a reconnect');
    serverDown = false;
    await waitInPage(page, () => window.auralis.stats().state === 'playing', null, 'playback after the reconnect');
    const resumed = (await stats()).framesPlayed;
    await waitInPage(
      page,
      ([from, frames]) => window.auralis.stats().framesPlayed > from + frames,
      [resumed, SAMPLE_RATE],
      'a second of audio after the reconnect',
    );
    const s = await stats();
    assert.ok(s.framesPlayed > before.framesPlayed);
    assert.equal(s.reconnects, 1);
    // The new stream was opened with the settings in force before the crash.
    assert.equal(s.params.key, before.params.key);
    assert.equal(s.params.bpm, before.params.bpm);
  });

  test('settings survive a reload', async () => {
    await setRange(page, '#intensity', 0.35);
    await setRange(page, '#volume', 0.6);
    await page.selectOption('#mode', 'lydian');
    await waitInPage(page, () => document.getElementById('now-playing').dataset.mode === 'lydian', null, 'the mode change');
    const saved = (await stats()).params;
    await page.reload();
    assert.equal(await page.inputValue('#key'), saved.key);
    assert.equal(await page.inputValue('#mode'), 'lydian');
    assert.equal(Number(await page.inputValue('#bpm')), saved.bpm);
    assert.equal(Number(await page.inputValue('#intensity')), 0.35);
    assert.equal(Number(await page.inputValue('#volume')), 0.6);
    await startPlaying(page);
    const s = await stats();
    assert.deepEqual(
      { key: s.params.key, mode: s.params.mode, bpm: s.params.bpm, intensity: s.params.intensity },
      { key: saved.key, mode: 'lydian', bpm: saved.bpm, intensity: 0.35 },
    );
  });

  test('Stop silences and a new Start plays again', async () => {
    await page.click('#start');
    await waitInPage(page, () => window.auralis.stats().state === 'stopped', null, 'the stopped state');
    assert.equal((await stats()).contextState, 'suspended');
    assert.equal(await page.textContent('#start'), 'Start');
    const stoppedAt = (await stats()).framesPlayed;
    await startPlaying(page);
    await waitInPage(
      page,
      ([from, frames]) => window.auralis.stats().framesPlayed > from + frames,
      [stoppedAt, SAMPLE_RATE / 2],
      'audio after the restart',
    );
    assert.equal((await stats()).reconnects, 0, 'a fresh start is not a reconnect');
  });

  test('format=json plays too', async () => {
    const { p, errors } = await openPlayer('?format=json');
    allErrors.push(errors);
    await startPlaying(p);
    const s = await stats(p);
    assert.equal(s.format, 'json');
    const rate = await playbackRate(p, 2000);
    assert.ok(Math.abs(rate - SAMPLE_RATE) / SAMPLE_RATE < 0.15, `json stream played ${rate.toFixed(0)} frames/s`);
    await p.close();
  });

  test('no console errors', () => {
    assert.deepEqual(allErrors.flat(), []);
  });
});

function round(v) {
  return Math.round(v * 10) / 10;
}
