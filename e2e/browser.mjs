// Debian's Chromium, headless, driven by playwright-core. No browser is ever
// downloaded: the executable is the system one.

import { chromium } from 'playwright-core';

const EXECUTABLE = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];

/** launch() gives each run a fresh temporary profile, removed on close. */
export function launchBrowser() {
  return chromium.launch({ executablePath: EXECUTABLE, args: ARGS, timeout: 30000 });
}

/**
 * Records every console error and uncaught page error of `page`.
 * `expected(text)` may excuse specific console errors (e.g. the refused
 * WebSocket while the server restarts); uncaught errors are never excused.
 */
export function collectErrors(page, expected = () => false) {
  const errors = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !expected(msg.text())) {
      errors.push(`console: ${msg.text()}`);
    }
  });
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  return errors;
}
