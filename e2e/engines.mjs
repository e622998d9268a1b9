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
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import puppeteer from 'puppeteer-core';
import { Builder } from 'selenium-webdriver';

import { ARTIFACTS, AuralisServer, BIN, freePort } from './server.mjs';

const FIREFOX = process.env.FIREFOX_BIN || '/usr/bin/firefox-esr';
const WEBKIT_DRIVER = process.env.WEBKIT_DRIVER_BIN || '/usr/bin/WebKitWebDriver';
const MINIBROWSER = process.env.MINIBROWSER_BIN || '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';
const XVFB_RUN = '/usr/bin/xvfb-run';
const PULSEAUDIO = process.env.PULSEAUDIO_BIN || '/usr/bin/pulseaudio';

const SAMPLE_RATE = 44100;
/** Each engine's whole run, launch included, stays under this. */
const ENGINE_TIMEOUT_MS = 90000;
const STEP_TIMEOUT_MS = 12000;

const missing = (...paths) => {
  const absent = paths.filter((p) => !existsSync(p));
  return absent.length ? `not installed: ${absent.join(', ')} (scripts/install-deps.sh installs them)` : false;
};

/** Records the page's errors from inside it, for drivers that cannot
 * subscribe to the console (WebDriver classic): console.error and uncaught
 * errors from the moment it runs. Errors before it break the page's start,
 * which the load check sees. */
function recordErrorsInPage() {
  if (window.__errors) return;
  window.__errors = [];
  const original = console.error.bind(console);
  console.error = (...args) => {
    window.__errors.push(`console: ${args.join(' ')}`);
    original(...args);
  };
  window.addEventListener('error', (e) => window.__errors.push(`pageerror: ${e.message}`));
  window.addEventListener('unhandledrejection', (e) => window.__errors.push(`rejection: ${e.reason}`));
}

/** A PulseAudio server of our own whose only sink is a null sink: an audio
 * device for Firefox on a machine without one, consuming in real time.
 * Started as any user, no D-Bus, no system configuration; gone on stop. */
async function startPulse() {
  const dir = mkdtempSync(join(tmpdir(), 'auralis-pulse-'));
  const socket = join(dir, 'native');
  const proc = spawn(
    PULSEAUDIO,
    [
      '-n',
      '--daemonize=no',
      '--exit-idle-time=-1',
      '--use-pid-file=no',
      '--load=module-null-sink sink_name=auralis',
      `--load=module-native-protocol-unix socket=${socket} auth-anonymous=1`,
    ],
    { env: { ...process.env, HOME: dir, XDG_RUNTIME_DIR: dir }, stdio: 'ignore' },
  );
  const stop = () => {
    proc.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  while (!existsSync(socket)) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      stop();
      throw new Error(`pulseaudio did not open ${socket}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { server: `unix:${socket}`, stop };
}

/** Firefox over WebDriver BiDi: console and page errors come as events. */
async function firefox({ pulse = false } = {}) {
  const sound = pulse ? await startPulse() : null;
  const env = sound ? { ...process.env, PULSE_SERVER: sound.server } : process.env;
  let browser;
  try {
    browser = await puppeteer.launch({
      browser: 'firefox',
      executablePath: FIREFOX,
      headless: true,
      protocol: 'webDriverBiDi',
      env,
      extraPrefsFirefox: {
        'media.autoplay.default': 0,
        'media.autoplay.blocking_policy': 0,
      },
    });
  } catch (e) {
    sound?.stop();
    throw e;
  }
  const page = await browser.newPage();
  const errors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  return {
    goto: (url) => page.goto(url),
    click: (sel) => page.click(sel),
    eval: (fn, arg) => page.evaluate(fn, arg),
    errors: async () => errors,
    close: async () => {
      // A Firefox that stopped answering does not close when asked.
      await within(browser.close(), STEP_TIMEOUT_MS, 'closing Firefox').catch(() => browser.process()?.kill('SIGKILL'));
      sound?.stop();
    },
  };
}

/** WebKitGTK's MiniBrowser through WebKitWebDriver, on a virtual display. */
async function webkit() {
  const port = await freePort();
  // A process group of its own: xvfb-run, Xvfb, the driver and the browser
  // all end together.
  const driverProc = spawn(XVFB_RUN, ['-a', WEBKIT_DRIVER, `--port=${port}`, '--host=127.0.0.1'], {
    detached: true,
    stdio: 'ignore',
  });
  const stopDriver = () => {
    try {
      process.kill(-driverProc.pid, 'SIGTERM');
    } catch {
      // Already gone.
    }
  };
  let driver;
  try {
    driver = await connectWebDriver(`http://127.0.0.1:${port}`);
  } catch (e) {
    stopDriver();
    throw e;
  }
  return {
    goto: async (url) => {
      await driver.get(url);
      await driver.executeScript(recordErrorsInPage);
    },
    click: (sel) => driver.findElement({ css: sel }).click(),
    eval: (fn, arg) => driver.executeScript(`return (${fn}).apply(null, arguments)`, arg),
    errors: () => driver.executeScript(() => window.__errors || ['the error recorder never ran']),
    close: async () => {
      await driver.quit().catch(() => {});
      stopDriver();
    },
  };
}

/** The driver listens a moment after it starts; a session is tried until
 * it answers, within the step timeout. */
async function connectWebDriver(url) {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  for (;;) {
    try {
      return await new Builder()
        .usingServer(url)
        .withCapabilities({
          browserName: 'MiniBrowser',
          'webkitgtk:browserOptions': { binary: MINIBROWSER, args: ['--automation'] },
        })
        .build();
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`WebKitWebDriver at ${url} never answered`, { cause: e });
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** `promise`, or an error naming `what` once `ms` have passed: a browser
 * that stops answering fails the step that asked, with its name, instead of
 * hanging the test until its overall timeout. */
function within(promise, ms, what) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms to ${what}`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

async function waitFor(b, fn, arg, what, timeout = STEP_TIMEOUT_MS) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const ok = await within(b.eval(fn, arg).catch(() => false), STEP_TIMEOUT_MS, `a poll for ${what}`);
    if (ok) return;
    if (Date.now() > deadline) {
      const s = await b.eval(() => window.auralis && window.auralis.stats()).catch(() => 'unavailable');
      throw new Error(`timed out waiting for ${what}; player: ${JSON.stringify(s)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

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
