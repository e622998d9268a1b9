// The page's address is the music: preset, key, mode, tempo, intensity and
// seed sit in its query, kept current with history.replaceState, so a copied
// link opens the same piece. A link's values are checked against the
// server's parameter table; a bad one is dropped with a visible note.

import { control } from './settings.js';

/** What a link carries, in the order the server applies it. */
export const LINK_NAMES = ['preset', 'key', 'mode', 'bpm', 'intensity', 'seed', 'journey'];
const U64_MAX = 18446744073709551615n;

/** A seed as the server takes it: a whole number from 0 to 2^64 - 1, kept
 * as a string (JavaScript numbers lose precision above 2^53). */
export function parseSeed(text) {
  if (typeof text !== 'string' || !/^\d{1,20}$/.test(text)) return null;
  return BigInt(text) <= U64_MAX ? String(BigInt(text)) : null;
}

function parseValue(name, text) {
  const c = control(name);
  if (!c) return undefined;
  if (c.type === 'seed') return parseSeed(text) ?? undefined;
  if (c.type === 'number') {
    const v = Number(text);
    return text.trim() !== '' && Number.isFinite(v) && v >= c.min && v <= c.max ? v : undefined;
  }
  return Array.isArray(c.values) && !c.values.includes(text) ? undefined : text;
}

/** The music a query asks for: `values` that fit the parameter table, and
 * `rejected`, one "name=value (what is allowed)" per value that does not. */
export function readLink(search) {
  const q = new URLSearchParams(search);
  const values = {};
  const rejected = [];
  for (const name of LINK_NAMES) {
    const text = q.get(name);
    if (text === null) continue;
    const v = parseValue(name, text);
    if (v === undefined) {
      const c = control(name);
      const allowed =
        c?.type === 'number'
          ? `${c.min} to ${c.max}`
          : c?.type === 'seed'
            ? 'a whole number'
            : (c?.values ?? []).join(', ');
      rejected.push(`${name}=${text.slice(0, 40)} (allowed: ${allowed})`);
    } else {
      values[name] = v;
    }
  }
  return { values, rejected };
}

/** This page's address for `music` (preset, key, …, seed), keeping any other
 * query parameter (such as `format`). */
export function linkFor(music, href = location.href) {
  const url = new URL(href);
  for (const name of LINK_NAMES) {
    if (music[name] === undefined || music[name] === null) url.searchParams.delete(name);
    else url.searchParams.set(name, String(music[name]));
  }
  return url.href;
}
