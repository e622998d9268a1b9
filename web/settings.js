// The listener's choices, kept in localStorage so a reload (or a reconnect)
// comes back to the same music. Stored values are validated on the way in:
// an old or hand-edited entry must not produce a query the server refuses.

const STORAGE_KEY = 'auralis.settings.v1';

// The music controls (names, kinds, ranges, choices, defaults) are the
// server's parameter table, from /api/status `controls`; `useControls`
// installs it. Until then only the volume is known here, and a query
// carries no music parameter (the server starts the focus preset).
let controls = [];

const VOLUME_DEFAULT = 0.8;

export function useControls(list) {
  controls = Array.isArray(list) ? list.filter((c) => c && typeof c.name === 'string') : [];
}

export function control(name) {
  return controls.find((c) => c.name === name);
}

/** What the page lets a listener choose: every control but the seed, which
 * a new stream picks for itself. */
export function musicNames() {
  return controls.filter((c) => c.type !== 'seed').map((c) => c.name);
}

/** The settings a first visit starts from. */
export function defaults() {
  const d = {};
  for (const name of musicNames()) d[name] = control(name).default;
  d.volume = VOLUME_DEFAULT;
  return d;
}

const inRange = (v, lo, hi) => typeof v === 'number' && Number.isFinite(v) && v >= lo && v <= hi;

function fits(c, v) {
  switch (c.type) {
    case 'number':
      return inRange(v, c.min, c.max);
    case 'seed':
      return Number.isSafeInteger(v) && v >= 0;
    default:
      return typeof v === 'string' && (Array.isArray(c.values) ? c.values.includes(v) : v.length > 0);
  }
}

export function isValid(name, value) {
  if (name === 'volume') return inRange(value, 0, 1);
  const c = control(name);
  return c !== undefined && fits(c, value);
}

export function loadSettings() {
  let stored = {};
  try {
    stored = JSON.parse(localStorage.getItem(STORAGE_KEY) || '{}') || {};
  } catch {
    // A corrupt entry is replaced by the defaults on the next save.
  }
  const settings = defaults();
  for (const name of Object.keys(settings)) {
    if (isValid(name, stored[name])) settings[name] = stored[name];
  }
  return settings;
}

export function saveSettings(settings) {
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify(settings));
  } catch {
    // Storage may be full or disabled; the music plays on regardless.
  }
}

/** The /ws/stream query for these settings: the preset first, then each
 * explicit value overriding it (the server applies them in that order). */
export function streamQuery(settings, format) {
  const q = new URLSearchParams({ format });
  for (const name of musicNames()) {
    if (settings[name] !== undefined) q.set(name, String(settings[name]));
  }
  return q;
}
