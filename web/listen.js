// "Listen anywhere": the HTTP stream URLs for the current settings, and a
// background-friendly player. The AudioWorklet path gives the lowest latency
// and live control, but browsers suspend it in background tabs and phones
// stop it with the screen; an <audio> element on /listen.opus is what they
// keep playing, with lock-screen controls through the Media Session API.

import { musicNames } from './settings.js';

/** The stream format this <audio> element can play: Ogg Opus where the
 * browser has it (smaller, and the room's existing Opus lane), else MP3
 * (Safari before 17, older iOS). */
export function playableFormat(audio) {
  return audio.canPlayType('audio/ogg; codecs=opus') ? 'opus' : 'mp3';
}

/** Absolute URL of /listen.opus, /listen.mp3 or /listen.wav for these settings, to paste
 * into VLC, mpv or a smart speaker. */
export function listenUrl(settings, kind, base = location.href) {
  const q = new URLSearchParams();
  for (const name of musicNames()) {
    if (settings[name] !== undefined) q.set(name, String(settings[name]));
  }
  return new URL(`/listen.${kind}?${q}`, base).href;
}

export class BackgroundPlayer {
  /** `onChange()` is called when playback starts or stops for any reason
   * (including the lock screen's buttons). */
  constructor(audio, onChange = () => {}) {
    this.audio = audio;
    this.onChange = onChange;
    this.url = null;
    audio.addEventListener('playing', () => this.onChange());
    audio.addEventListener('pause', () => this.onChange());
  }

  /** 'opus' or 'mp3': what `start` should be given a URL of. */
  get format() {
    return playableFormat(this.audio);
  }

  get playing() {
    return !this.audio.paused;
  }

  /** Started and not stopped (it may be paused from the lock screen). */
  get active() {
    return this.url !== null;
  }

  async start(url, preset, volume) {
    this.url = url;
    this.audio.src = url;
    this.audio.volume = volume;
    this.describe(preset);
    await this.audio.play();
  }

  stop() {
    this.pause();
    this.url = null;
  }

  /** Pausing a live stream only stalls it (the server would drop the reader
   * anyway): the source is let go, and play resumes with a fresh request. */
  pause() {
    this.audio.pause();
    this.audio.removeAttribute('src');
    this.audio.load();
  }

  setVolume(v) {
    this.audio.volume = v;
  }

  describe(preset) {
    if (!('mediaSession' in navigator)) return;
    const album = preset || 'Auralis';
    navigator.mediaSession.metadata = new MediaMetadata({ title: 'Auralis', artist: album, album });
    navigator.mediaSession.setActionHandler('play', () => {
      if (!this.url) return;
      this.audio.src = this.url;
      this.audio.play().catch(() => this.onChange());
    });
    navigator.mediaSession.setActionHandler('pause', () => this.pause());
  }
}
