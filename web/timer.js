// The sleep / focus timer: the server fades the music over its last 10 s
// and ends the stream (a `timer` message on /ws/stream); the page only
// keeps the deadline to show the time left and to re-arm the timer on a
// stream that reconnects.

/** Longest timer the server accepts, in seconds (a day). */
export const MAX_TIMER_SECONDS = 86400;

/** Seconds for a choice of the timer select ("", "15", …, "custom") and the
 * custom minutes field; null for off or anything out of range. */
export function timerSeconds(choice, customMinutes) {
  const minutes = choice === 'custom' ? Number(customMinutes) : Number(choice);
  if (choice === '' || !Number.isFinite(minutes)) return null;
  const seconds = Math.round(minutes * 60);
  return seconds >= 1 && seconds <= MAX_TIMER_SECONDS ? seconds : null;
}

/** "1:02:03", "4:05", "0:07". */
export function formatLeft(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

export class SleepTimer {
  constructor() {
    this.endsAt = null; // performance.now() at the end, or null
  }

  get armed() {
    return this.endsAt !== null;
  }

  set(seconds, now = performance.now()) {
    this.endsAt = seconds === null ? null : now + seconds * 1000;
  }

  /** Seconds left, or null without a timer. */
  left(now = performance.now()) {
    return this.endsAt === null ? null : Math.max(0, (this.endsAt - now) / 1000);
  }

  /** The message that arms (or cancels) the server's timer now. */
  message(now = performance.now()) {
    const left = this.left(now);
    return { type: 'timer', seconds: left === null ? null : Math.max(1, Math.round(left)) };
  }
}
