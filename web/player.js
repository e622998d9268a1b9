// The main-thread half of the player: the AudioContext, the worklet that
// holds the jitter buffer, the volume and the analyser behind the meter.

import { preferPlayback, resumeWithin } from './audio-session.js';
import { nowMs } from './clock.js';

/**
 * Whether `AudioContext.outputLatency` may be read. Gecko's getter asks the
 * audio server for the latency while holding its graph's lock; with the
 * PulseAudio backend, an audio callback in flight at that moment needs the
 * same lock, and the page's main thread blocks for good (Firefox ESR 153 on
 * a PulseAudio null sink here: 14 of 20 launches froze on the first read,
 * 0 of 10 without it). A deadlock cannot be feature-detected, so Gecko is
 * recognised by name; its latency figures then leave out the output
 * device's few tens of milliseconds.
 */
export function readsOutputLatency(userAgent) {
  return !/\bGecko\/\d/.test(userAgent);
}

const READS_OUTPUT_LATENCY = readsOutputLatency(globalThis.navigator?.userAgent || '');

export class Player {
  /** Must be called from a user gesture (autoplay policy). `onStatus`
   * receives the worklet's reports (see player-worklet.js `report`). */
  static async create(onStatus) {
    preferPlayback();
    const ctx = new AudioContext({ sampleRate: 44100, latencyHint: 'interactive' });
    try {
      return await Player.build(ctx, onStatus);
    } catch (e) {
      // A context that never ran holds a device (or waits for one): a
      // retry starts from a fresh one.
      ctx.close().catch(() => {});
      throw e;
    }
  }

  static async build(ctx, onStatus) {
    await ctx.audioWorklet.addModule(new URL('./player-worklet.js', import.meta.url));
    const node = new AudioWorkletNode(ctx, 'auralis-player', {
      numberOfInputs: 0,
      numberOfOutputs: 1,
      outputChannelCount: [2],
    });
    const volume = ctx.createGain();
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 2048;
    analyser.smoothingTimeConstant = 0.8;
    node.connect(volume).connect(ctx.destination);
    volume.connect(analyser);
    const player = new Player(ctx, node, volume, analyser);
    node.port.onmessage = (e) => onStatus(e.data);
    await resumeWithin(ctx);
    return player;
  }

  constructor(ctx, node, volume, analyser) {
    this.ctx = ctx;
    this.node = node;
    this.volume = volume;
    this.analyser = analyser;
  }

  get sampleRate() {
    return this.ctx.sampleRate;
  }

  /** Hands a decoded chunk to the worklet; its buffers move, not copy. */
  push(chunk, conn, arrival) {
    const { seq, timestamp, left, right } = chunk;
    this.node.port.postMessage(
      { type: 'chunk', conn, seq, ts: timestamp, arrival, left, right },
      [left.buffer, right.buffer],
    );
  }

  flush() {
    this.node.port.postMessage({ type: 'flush' });
  }

  setVolume(v) {
    // A short glide: a jump in gain is a click.
    this.volume.gain.setTargetAtTime(v, this.ctx.currentTime, 0.03);
  }

  /** Ramps the output to silence over `seconds` and resolves once it is
   * silent; `setVolume` brings it back. */
  async fadeOut(seconds = 0.25) {
    const gain = this.volume.gain;
    const now = this.ctx.currentTime;
    gain.cancelScheduledValues(now);
    gain.setValueAtTime(gain.value, now);
    gain.linearRampToValueAtTime(0, now + seconds);
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  }

  async suspend() {
    await this.ctx.suspend();
  }

  async resume() {
    await resumeWithin(this.ctx);
  }

  /**
   * When audio rendered at context time `t` reaches the listener, in client
   * epoch ms: `currentTime` is being rendered about now, and what is rendered
   * leaves the speakers baseLatency + outputLatency later.
   */
  heardAt(t) {
    const ctx = this.ctx;
    const output = READS_OUTPUT_LATENCY ? ctx.outputLatency || 0 : 0;
    const pipeline = (ctx.baseLatency || 0) + output;
    return nowMs() + (t - ctx.currentTime + pipeline) * 1000;
  }
}
