// The audio-thread half of the player: an adaptive jitter buffer (brief §5.2,
// Appendix A.4) that the main thread fills with decoded chunks and the
// render loop drains 128 frames at a time.
//
// Everything the render loop touches is allocated once in the constructor:
// a garbage collection on the audio thread is an audible glitch.

const CHUNK_MS = 100;
const ALPHA = 0.1; // EMA weight of a new jitter sample (brief §5.3)
/** Jitter EMA ceilings (ms) and the buffer each tier aims for (ms). */
const TIERS = [
  { maxJitterMs: 10, targetMs: 300 },
  { maxJitterMs: 25, targetMs: 500 },
  { maxJitterMs: 50, targetMs: 700 },
  { maxJitterMs: Infinity, targetMs: 1000 },
];
/** Above target + headroom the oldest audio goes, so latency stays bounded. */
const HEADROOM_MS = 500;
const HARD_CAP_MS = 1500;
/** The ring holds the hard cap plus a few chunks that may land before the
 * render loop next runs; only beyond that is audio dropped without a fade. */
const RING_MS = 2000;
const QUANTUM = 128;
/** An underrun fades out over one quantum (2.9 ms): short enough to use only
 * audio we have, long enough not to click. A return fades in more slowly. */
const FADE_OUT_FRAMES = QUANTUM;
const FADE_IN_FRAMES = 882; // 20 ms
/** Slack the buffer carried for a whole window without needing it is
 * latency for nothing: beyond this much it is trimmed. The window is long
 * enough to have seen the network's usual hiccups. */
const TRIM_WINDOW_S = 3;
const TRIM_SLACK_MS = 50;
/** Chunks the ring can hold, with room to spare. */
const MAX_CHUNKS = 64;
/** Status reports while nothing starts, e.g. during buffering. */
const REPORT_EVERY_FRAMES = 4410;

class PlayerProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    const frames = Math.ceil((RING_MS / 1000) * sampleRate);
    this.capacity = frames;
    this.left = new Float32Array(frames);
    this.right = new Float32Array(frames);
    // Absolute frame counters; the ring index is counter % capacity.
    this.writePos = 0;
    this.readPos = 0;

    // Where each buffered chunk begins, to tell the main thread which chunk
    // reached the speakers and when (latency measurement).
    this.chunkStart = new Float64Array(MAX_CHUNKS);
    this.chunkSeq = new Float64Array(MAX_CHUNKS);
    this.chunkTs = new Float64Array(MAX_CHUNKS);
    this.chunkConn = new Int32Array(MAX_CHUNKS);
    this.chunkHead = 0; // next chunk to start playing
    this.chunkTail = 0; // next free slot
    this.startedOffset = 0;

    this.playing = false;
    this.gain = 0;
    this.fadeIn = 0; // frames of fade-in still to go
    this.skipFrames = 0; // frames to jump over with a crossfade
    this.chunkFrames = 4410; // size of the latest chunk
    this.windowFrames = 0;
    this.windowMinDepth = Infinity;

    this.jitterMs = 0;
    this.tier = 0;
    this.lastArrival = -1;
    this.lastTs = 0;
    this.lastConn = -1;

    this.underruns = 0;
    this.framesPlayed = 0;
    this.framesSinceReport = 0;

    this.port.onmessage = (e) => this.receive(e.data);
  }

  receive(msg) {
    if (msg.type === 'chunk') this.enqueue(msg);
    else if (msg.type === 'flush') this.flush();
  }

  get depth() {
    return this.writePos - this.readPos;
  }

  get targetFrames() {
    return Math.round((TIERS[this.tier].targetMs / 1000) * sampleRate);
  }

  get maxFrames() {
    const ms = Math.min(TIERS[this.tier].targetMs + HEADROOM_MS, HARD_CAP_MS);
    return Math.round((ms / 1000) * sampleRate);
  }

  enqueue({ conn, seq, ts, arrival, left, right }) {
    this.trackJitter(conn, ts, arrival);
    const n = Math.min(left.length, this.capacity);
    this.chunkFrames = n;
    if (this.depth + n > this.capacity) this.dropOldest(this.depth + n - this.capacity);
    const w = this.writePos % this.capacity;
    const first = Math.min(n, this.capacity - w);
    this.left.set(left.subarray(0, first), w);
    this.right.set(right.subarray(0, first), w);
    if (first < n) {
      this.left.set(left.subarray(first, n), 0);
      this.right.set(right.subarray(first, n), 0);
    }
    this.rememberChunk(conn, seq, ts, this.writePos);
    this.writePos += n;

    if (this.depth > this.maxFrames) {
      const excess = this.depth - this.targetFrames;
      // While silent nothing can click: drop at once. While playing, the
      // render loop crossfades over the gap.
      if (this.playing) this.skipFrames = excess;
      else this.dropOldest(excess);
    }
  }

  // Jitter is |inter-arrival − 100 ms| (brief §5.3). Chunks the server
  // stamped together were sent together on purpose (its start-up lead), so
  // their zero gap is not network jitter and is left out.
  trackJitter(conn, ts, arrival) {
    if (conn === this.lastConn && (ts - this.lastTs) * 1000 >= CHUNK_MS / 2) {
      const sample = Math.abs(arrival - this.lastArrival - CHUNK_MS);
      this.jitterMs = ALPHA * sample + (1 - ALPHA) * this.jitterMs;
      let tier = 0;
      while (this.jitterMs >= TIERS[tier].maxJitterMs) tier++;
      this.tier = tier;
    }
    this.lastConn = conn;
    this.lastTs = ts;
    this.lastArrival = arrival;
  }

  rememberChunk(conn, seq, ts, start) {
    const i = this.chunkTail % MAX_CHUNKS;
    this.chunkConn[i] = conn;
    this.chunkSeq[i] = seq;
    this.chunkTs[i] = ts;
    this.chunkStart[i] = start;
    this.chunkTail++;
    // More chunks than slots means the oldest were dropped from the ring.
    if (this.chunkTail - this.chunkHead > MAX_CHUNKS) this.chunkHead = this.chunkTail - MAX_CHUNKS;
  }

  dropOldest(frames) {
    this.readPos += Math.min(frames, this.depth);
    this.forgetChunksBefore(this.readPos);
  }

  forgetChunksBefore(pos) {
    while (this.chunkHead < this.chunkTail && this.chunkStart[this.chunkHead % MAX_CHUNKS] < pos) {
      this.chunkHead++;
    }
  }

  flush() {
    this.readPos = this.writePos;
    this.chunkHead = this.chunkTail;
    this.playing = false;
    this.gain = 0;
    this.skipFrames = 0;
  }

  process(_inputs, outputs) {
    const out = outputs[0];
    const outL = out[0];
    const outR = out[1] || out[0];
    const frames = outL.length;
    let started = -1; // index of the chunk that started in this quantum

    if (!this.playing && this.depth >= this.targetFrames) {
      this.playing = true;
      this.fadeIn = FADE_IN_FRAMES;
    }

    if (!this.playing) {
      outL.fill(0);
      if (outR !== outL) outR.fill(0);
    } else if (this.skipFrames > 0 && this.depth >= this.skipFrames + frames) {
      started = this.renderSkip(outL, outR, frames);
    } else if (this.depth < 2 * frames) {
      // A chunk starting inside the fade is not heard; the next one counts.
      this.renderUnderrun(outL, outR, frames);
    } else {
      started = this.renderPlain(outL, outR, frames);
    }

    this.watchSlack(frames);
    this.framesSinceReport += frames;
    if (started >= 0 || this.framesSinceReport >= REPORT_EVERY_FRAMES) this.report(started);
    return true;
  }

  /**
   * Started at the target, steady arrivals keep the depth between the target
   * and one chunk below it. A buffer that stayed above that floor for a whole
   * window (playback began late, or jitter calmed and the tier dropped) is
   * skipped down to it.
   */
  watchSlack(frames) {
    if (!this.playing) {
      this.windowFrames = 0;
      this.windowMinDepth = Infinity;
      return;
    }
    this.windowMinDepth = Math.min(this.windowMinDepth, this.depth);
    this.windowFrames += frames;
    if (this.windowFrames < TRIM_WINDOW_S * sampleRate) return;
    const floor = this.targetFrames - this.chunkFrames;
    const excess = this.windowMinDepth - floor;
    if (excess > (TRIM_SLACK_MS / 1000) * sampleRate && this.skipFrames === 0) {
      this.skipFrames = excess;
    }
    this.windowFrames = 0;
    this.windowMinDepth = Infinity;
  }

  /** Plays `frames` frames from the ring with the running gain; returns the
   * chunk that started in them, or -1. */
  renderPlain(outL, outR, frames) {
    const started = this.chunkStartingIn(this.readPos, frames);
    const cap = this.capacity;
    let r = this.readPos % cap;
    for (let i = 0; i < frames; i++) {
      const g = this.nextGain();
      outL[i] = this.left[r] * g;
      if (outR !== outL) outR[i] = this.right[r] * g;
      if (++r === cap) r = 0;
    }
    this.readPos += frames;
    this.framesPlayed += frames;
    return started;
  }

  /** The buffer ran dry: fade what is left to silence, count it, and wait
   * for the target depth again. */
  renderUnderrun(outL, outR, frames) {
    const n = Math.min(this.depth, FADE_OUT_FRAMES, frames);
    const cap = this.capacity;
    let r = this.readPos % cap;
    const g0 = this.gain;
    for (let i = 0; i < frames; i++) {
      if (i < n) {
        const g = g0 * (1 - (i + 1) / n);
        outL[i] = this.left[r] * g;
        if (outR !== outL) outR[i] = this.right[r] * g;
        if (++r === cap) r = 0;
      } else {
        outL[i] = 0;
        if (outR !== outL) outR[i] = 0;
      }
    }
    this.readPos += n;
    this.framesPlayed += n;
    this.gain = 0;
    this.playing = false;
    this.skipFrames = 0;
    this.underruns++;
  }

  /** Too much buffered: crossfade from the oldest audio to audio
   * `skipFrames` later, so the jump is not a click. */
  renderSkip(outL, outR, frames) {
    const cap = this.capacity;
    let a = this.readPos % cap;
    let b = (this.readPos + this.skipFrames) % cap;
    for (let i = 0; i < frames; i++) {
      const w = (i + 1) / frames;
      const g = this.nextGain();
      outL[i] = (this.left[a] * (1 - w) + this.left[b] * w) * g;
      if (outR !== outL) outR[i] = (this.right[a] * (1 - w) + this.right[b] * w) * g;
      if (++a === cap) a = 0;
      if (++b === cap) b = 0;
    }
    this.readPos += this.skipFrames;
    this.skipFrames = 0;
    this.forgetChunksBefore(this.readPos);
    const started = this.chunkStartingIn(this.readPos, frames);
    this.readPos += frames;
    this.framesPlayed += frames;
    return started;
  }

  nextGain() {
    if (this.fadeIn > 0) {
      this.fadeIn--;
      this.gain = 1 - this.fadeIn / FADE_IN_FRAMES;
    } else {
      this.gain = 1;
    }
    return this.gain;
  }

  /** If a chunk's first frame lies in [from, from + frames), consumes it from
   * the chunk list, keeps its offset into this quantum in `startedOffset`
   * and returns its slot; else -1. */
  chunkStartingIn(from, frames) {
    this.forgetChunksBefore(from);
    if (this.chunkHead === this.chunkTail) return -1;
    const i = this.chunkHead % MAX_CHUNKS;
    if (this.chunkStart[i] >= from + frames) return -1;
    this.startedOffset = this.chunkStart[i] - from;
    this.chunkHead++;
    return i;
  }

  report(started) {
    this.framesSinceReport = 0;
    const msg = {
      type: 'status',
      playing: this.playing,
      framesPlayed: this.framesPlayed,
      // The audio clock at this report: frames played are judged against
      // it, not against wall time, which a busy machine stretches.
      audioTime: currentFrame / sampleRate,
      depthFrames: this.depth,
      targetFrames: this.targetFrames,
      tier: this.tier + 1,
      jitterMs: this.jitterMs,
      underruns: this.underruns,
      started: null,
    };
    if (started >= 0) {
      msg.started = {
        conn: this.chunkConn[started],
        seq: this.chunkSeq[started],
        ts: this.chunkTs[started],
        // Context time at which the chunk's first frame was rendered.
        time: (currentFrame + this.startedOffset) / sampleRate,
      };
    }
    this.port.postMessage(msg);
  }
}

registerProcessor('auralis-player', PlayerProcessor);
