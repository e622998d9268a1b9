// The listener's choices, kept in localStorage so a reload (or a reconnect)
// comes back to the same music. Stored values are validated on the way in:
// an old or hand-edited entry must not produce a query the server refuses.

const STORAGE_KEY = 'auralis.settings.v1';

export const KEYS = ['C', 'C#', 'D', 'D#', 'E', 'F', 'F#', 'G', 'G#', 'A', 'A#', 'B'];
export const MODES = ['ionian', 'dorian', 'phrygian', 'lydian', 'mixolydian', 'aeolian', 'locrian'];
const BPM_MIN = 40;
const BPM_MAX = 120;

export const DEFAULTS = Object.freeze({
  preset: 'focus',
  key: 'D',
  mode: 'dorian',
  bpm: 60,
  intensity: 0.5,
  volume: 0.8,
});

const inRange = (v, lo, hi) => typeof v === 'number' && Number.isFinite(v) && v >= lo && v <= hi;

const VALID = {
  preset: (v) => typeof v === 'string' && /^[a-z0-9_-]{1,32}$/.test(v),
  key: (v) => KEYS.includes(v),
  mode: (v) => MODES.includes(v),
  bpm: (v) => inRange(v, BPM_MIN, BPM_MAX),
  intensity: (v) => inRange(v, 0, 1),
  volume: (v) => inRange(v, 0, 1),
};

export function isValid(name, value) {
  return VALID[name] !== undefined && VALID[name](value);
}

export function loadSettings() {
  let stored = {};
  try {
    stored = JSON.parse(localStorage.getItem(STORAGE_KEY) || '{}') || {};
  } catch {
    // A corrupt entry is replaced by the defaults on the next save.
  }
  const settings = { ...DEFAULTS };
  for (const name of Object.keys(DEFAULTS)) {
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
  for (const name of ['preset', 'key', 'mode', 'bpm', 'intensity']) {
    q.set(name, String(settings[name]));
  }
  return q;
}
