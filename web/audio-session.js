// Getting the audio output running, and keeping it running, in every engine.
//
// Firefox with no output device never settles `AudioContext.resume()`;
// iOS Safari mutes a page whose audio session is not "playback" and moves a
// context to "interrupted" during a call; every engine may suspend a context
// while the page is hidden or frozen in the back-forward cache. Each of
// those must end in music or in a clear "audio unavailable", never in a
// page that silently waits.

/** Long enough for a slow device to open, short enough that a listener
 * pressing Start is told something. */
export const RESUME_TIMEOUT_MS = 4000;

export class AudioUnavailable extends Error {
  constructor(message) {
    super(message);
    this.name = 'AudioUnavailable';
  }
}

/** Asks iOS Safari (and any engine with the Audio Session API) to treat the
 * page as a music player: heard with the ringer switch off, paused by calls. */
export function preferPlayback() {
  const session = navigator.audioSession;
  if (session && session.type !== 'playback') {
    try {
      session.type = 'playback';
    } catch {
      // An engine that refuses the type keeps its default; nothing to do.
    }
  }
}

/** `ctx.resume()`, bounded: throws AudioUnavailable if the output does not
 * start within `ms`, or if resume() itself fails. */
export async function resumeWithin(ctx, ms = RESUME_TIMEOUT_MS) {
  let timer;
  const timeout = new Promise((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  let outcome;
  try {
    outcome = await Promise.race([ctx.resume().then(() => 'resumed'), timeout]);
  } catch (e) {
    throw new AudioUnavailable(`the audio output failed to start (${e.message})`);
  } finally {
    clearTimeout(timer);
  }
  if (outcome === 'timeout') {
    throw new AudioUnavailable(`the audio output did not start within ${ms / 1000} s (no output device?)`);
  }
  if (ctx.state !== 'running') {
    throw new AudioUnavailable(`the audio output is ${ctx.state}`);
  }
}

/**
 * Brings `ctx` back whenever the listener wants music and the engine has
 * stopped it: an iOS interruption ending, the page shown again, restored
 * from the back-forward cache. `wanted()` says whether music should play;
 * `onWake()` is told after each attempt (to reconnect a dropped stream);
 * `onError(e)` if the output cannot be restarted.
 */
export function keepRunning(ctx, { wanted, onWake, onError }) {
  let busy = false;
  const wake = async () => {
    if (busy || !wanted() || document.visibilityState === 'hidden') return;
    busy = true;
    try {
      if (ctx.state !== 'running' && ctx.state !== 'closed') await resumeWithin(ctx);
      onWake();
    } catch (e) {
      onError(e);
    } finally {
      busy = false;
    }
  };
  // Safari leaves "interrupted" for "suspended" when the call ends; other
  // engines go straight back to "running" and this does nothing.
  ctx.addEventListener('statechange', () => {
    if (ctx.state === 'suspended') wake();
  });
  document.addEventListener('visibilitychange', wake);
  window.addEventListener('pageshow', wake);
}
