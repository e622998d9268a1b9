// The other browser engines as the e2e suites drive them: Firefox (Debian's
// firefox-esr over WebDriver BiDi, optionally with a private PulseAudio
// server as its audio device) and WebKitGTK (MiniBrowser through
// WebKitWebDriver under xvfb-run). Each driver offers the same few calls:
// goto, click, select, eval, errors, close. Neither browser is downloaded.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import puppeteer from 'puppeteer-core';
import { Builder } from 'selenium-webdriver';

import { freePort } from './server.mjs';

export const FIREFOX = process.env.FIREFOX_BIN || '/usr/bin/firefox-esr';
export const WEBKIT_DRIVER = process.env.WEBKIT_DRIVER_BIN || '/usr/bin/WebKitWebDriver';
export const MINIBROWSER = process.env.MINIBROWSER_BIN || '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';
export const XVFB_RUN = '/usr/bin/xvfb-run';
export const PULSEAUDIO = process.env.PULSEAUDIO_BIN || '/usr/bin/pulseaudio';

/** Every call into a browser answers within this, or fails by name. */
export const STEP_TIMEOUT_MS = 12000;

export const missing = (...paths) => {
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
export async function firefox({ pulse = false } = {}) {
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
    select: (sel, value) => page.select(sel, value),
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
export async function webkit() {
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
    // WebDriver classic picks an option by clicking it, which MiniBrowser's
    // headless popup does not take: set the value and say so, as a user's
    // choice would.
    select: (sel, value) =>
      driver.executeScript(
        (s, v) => {
          const el = document.querySelector(s);
          el.value = v;
          el.dispatchEvent(new Event('input', { bubbles: true }));
          el.dispatchEvent(new Event('change', { bubbles: true }));
        },
        sel,
        value,
      ),
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
export function within(promise, ms, what) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms to ${what}`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

export async function waitFor(b, fn, arg, what, timeout = STEP_TIMEOUT_MS) {
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

