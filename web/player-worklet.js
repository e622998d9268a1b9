// The audio-thread half of the player: an adaptive jitter buffer (brief §5.2,
// Appendix A.4) that the main thread fills with decoded chunks and the
// render loop drains 128 frames at a time.
//
// The buffer adapts while it plays: the read position moves through the ring
// at a rate a few per cent either side of 1 (a resampler with 4-point
// interpolation), so the depth drifts toward the tier's target without a gap
// or a skip; on ambient pads ±3 % is inaudible. An underrun fades out over
// 20 ms and a return fades in over 20 ms, and after a stall the music goes on
// from where it stopped: latency is won back by the same rate control.
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
/** A tier goes up as soon as the jitter calls for it, and down one step at a
 * time, only after it has held this long and the jitter sits clearly below
 * the lower tier's ceiling: an EMA hovering at a ceiling does not flap. */
const TIER_HOLD_S = 10;
const TIER_DOWN_MARGIN = 0.8;
/** After a stall the burst that follows is kept, not skipped, so the music
 * goes on; only beyond this much buffered is the oldest audio dropped. */
const HARD_CAP_MS = 6000;
/** The ring holds the hard cap plus a few chunks that may land before the
 * render loop next runs. */
const RING_MS = 8000;
const QUANTUM = 128;
/** Fades in and out take 20 ms: long enough not to thump, short enough that
 * a fade-out needs only audio the buffer still holds. */
const FADE_FRAMES = 882;
/** Rate control: the depth, smoothed over half a second, is steered toward
 * the target by playing at 1 ± 10 % per second of error (at most ±3 %),
 * with a dead band so a buffer near its target plays at exactly 1. */
const MAX_RATE_DEVIATION = 0.03;
const RATE_PER_SECOND_OF_ERROR = 0.1;
const RATE_DEAD_BAND_S = 0.03;
const DEPTH_SMOOTHING_S = 0.5;
/** How much the rate may change per quantum: a glide, never a step. */
const RATE_SLEW = 0.0002;
/** After an underrun playback resumes at half the target (at least two
 * chunks): waiting for the whole target would add to the silence, and the
 * rate control grows the rest while playing. */
const RESUME_FRACTION = 0.5;
const MIN_RESUME_MS = 2 * CHUNK_MS;
/** Chunks the ring can hold, with room to spare. */
const MAX_CHUNKS = 128;
/** A control change comes back as the chunks from its splice point again
 * (an earlier seq on the same connection): they replace what is buffered
 * from there, with an equal-power crossfade of 30 ms from the old audio to
 * the new. Never closer to the playhead than this, so the render loop's
 * interpolator never reads a frame that changes under it. */
const SPLICE_FADE_FRAMES = 1323;
const SPLICE_GUARD_FRAMES = 2 * 128 + 4;
/** Status reports while nothing starts, e.g. during buffering. */
const REPORT_EVERY_FRAMES = 4410;

class PlayerProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    const frames = Math.ceil((RING_MS / 1000) * sampleRate);
    this.capacity = frames;
    this.left = new Float32Array(frames);
    this.right = new Float32Array(frames);
    // Absolute frame counters; the ring index is counter % capacity. The
    // read position is fractional: the resampler reads between frames.
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
    this.everPlayed = false;
    this.gain = 0;
    this.gainTarget = 0;
    this.rate = 1;
    this.smoothDepth = 0;
    this.skipFrames = 0; // frames to jump over with a crossfade

    this.jitterMs = 0;
    this.tier = 0;
    this.tierSince = 0; // currentFrame of the last tier change
    this.tierChanges = 0;
    this.lastArrival = -1;
    this.lastTs = 0;
    this.lastConn = -1;
    // The last chunk written, to recognise a splice: the same connection
    // sending an earlier seq.
    this.writtenConn = -1;
    this.writtenSeq = -1;
    this.splices = 0;
    this.lateSplices = 0;

    this.underruns = 0;
    this.framesPlayed = 0; // output frames that carried the stream
    this.silentFrames = 0; // output frames of silence since the first start
    this.droppedFrames = 0; // stream frames never played (overflow, skip)
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

  msToFrames(ms) {
    return Math.round((ms / 1000) * sampleRate);
  }

  get targetFrames() {
    return this.msToFrames(TIERS[this.tier].targetMs);
  }

  get resumeFrames() {
    return Math.max(this.targetFrames * RESUME_FRACTION, this.msToFrames(MIN_RESUME_MS));
  }

  enqueue({ conn, seq, ts, arrival, left, right }) {
    this.trackJitter(conn, ts, arrival);
    const n = Math.min(left.length, this.capacity);
    const spliced = conn === this.writtenConn && seq <= this.writtenSeq;
    const newest = this.writtenSeq;
    this.writtenConn = conn;
    this.writtenSeq = seq;
    if (spliced) {
      this.splice(conn, seq, newest, ts, left, right, n);
      return;
    }
    if (this.depth + n > this.capacity - 4) this.dropOldest(this.depth + n - this.capacity + 4);
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

    const cap = this.msToFrames(HARD_CAP_MS);
    if (this.depth > cap) {
      const excess = Math.floor(this.depth - this.targetFrames);
      // While silent nothing can click: drop at once. While playing, the
      // render loop crossfades over the gap.
      if (this.playing) this.skipFrames = excess;
      else this.dropOldest(excess);
    }
  }

  /**
   * Writes chunk `seq` over the buffered audio where that chunk began, and
   * lets the old audio go from there. If the playhead has already passed
   * that point (the splice came late), the chunk goes in just ahead of the
   * playhead instead: a fraction of a second is heard twice, across the
   * crossfade, rather than a cut.
   */
  splice(conn, seq, newest, ts, left, right, n) {
    const start = this.writePos - (newest - seq + 1) * n;
    // Past the end of what is buffered there is nothing to replace: append.
    const at = Math.min(Math.max(start, Math.ceil(this.readPos) + SPLICE_GUARD_FRAMES), this.writePos);
    if (at > start) this.lateSplices++;
    this.splices++;
    while (this.chunkTail > this.chunkHead && this.chunkStart[(this.chunkTail - 1) % MAX_CHUNKS] >= start) {
      this.chunkTail--;
    }
    const old = Math.max(0, this.writePos - at);
    const fade = Math.min(SPLICE_FADE_FRAMES, old, n);
    const cap = this.capacity;
    for (let i = 0; i < n; i++) {
      const k = (at + i) % cap;
      if (i < fade) {
        const x = ((i + 0.5) / fade) * (Math.PI / 2);
        const gOld = Math.cos(x);
        const gNew = Math.sin(x);
        this.left[k] = this.left[k] * gOld + left[i] * gNew;
        this.right[k] = this.right[k] * gOld + right[i] * gNew;
      } else {
        this.left[k] = left[i];
        this.right[k] = right[i];
      }
    }
    this.rememberChunk(conn, seq, ts, at);
    this.writePos = at + n;
  }

  // Jitter is |inter-arrival − 100 ms| (brief §5.3). Chunks the server
  // stamped together were sent together on purpose (its start-up lead), so
  // their zero gap is not network jitter and is left out.
  trackJitter(conn, ts, arrival) {
    if (conn === this.lastConn && (ts - this.lastTs) * 1000 >= CHUNK_MS / 2) {
      const sample = Math.abs(arrival - this.lastArrival - CHUNK_MS);
      this.jitterMs = ALPHA * sample + (1 - ALPHA) * this.jitterMs;
      this.chooseTier();
    }
    this.lastConn = conn;
    this.lastTs = ts;
    this.lastArrival = arrival;
  }

  /** Up at once, down slowly (see TIER_HOLD_S). */
  chooseTier() {
    let wanted = 0;
    while (this.jitterMs >= TIERS[wanted].maxJitterMs) wanted++;
    const held = (currentFrame - this.tierSince) / sampleRate;
    if (wanted > this.tier) {
      this.setTier(wanted);
    } else if (
      wanted < this.tier &&
      held >= TIER_HOLD_S &&
      this.jitterMs < TIERS[this.tier - 1].maxJitterMs * TIER_DOWN_MARGIN
    ) {
      this.setTier(this.tier - 1);
    }
  }

  setTier(tier) {
    this.tier = tier;
    this.tierSince = currentFrame;
    this.tierChanges++;
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
    const n = Math.min(frames, this.depth);
    this.readPos += n;
    this.droppedFrames += Math.round(n);
    this.forgetChunksBefore(this.readPos);
  }

  forgetChunksBefore(pos) {
    while (this.chunkHead < this.chunkTail && this.chunkStart[this.chunkHead % MAX_CHUNKS] < pos) {
      this.chunkHead++;
    }
  }

  /** The listener stopped: what is buffered is let go (not counted as
   * dropped: nobody was listening), and the next start begins afresh. */
  flush() {
    this.readPos = this.writePos;
    this.chunkHead = this.chunkTail;
    this.playing = false;
    this.everPlayed = false;
    this.gain = 0;
    this.gainTarget = 0;
    this.rate = 1;
    this.skipFrames = 0;
    this.writtenConn = -1;
    this.writtenSeq = -1;
  }

  process(_inputs, outputs) {
    const out = outputs[0];
    const outL = out[0];
    const outR = out[1] || out[0];
    const frames = outL.length;
    let started = -1; // index of the chunk that started in this quantum

    this.watchDepth(frames);
    if (!this.playing) {
      outL.fill(0);
      if (outR !== outL) outR.fill(0);
      if (this.everPlayed) this.silentFrames += frames;
    } else if (this.skipFrames > 0 && this.depth >= this.skipFrames + frames + 4) {
      started = this.renderSkip(outL, outR, frames);
    } else {
      started = this.renderResampled(outL, outR, frames);
    }

    this.framesSinceReport += frames;
    if (started >= 0 || this.framesSinceReport >= REPORT_EVERY_FRAMES) this.report(started);
    return true;
  }

  /**
   * Starts, fades and steers playback from the depth: starts at the target
   * (or the resume depth after an underrun), fades out while 20 ms are still
   * there to fade, fades back in if audio returns during that fade, and
   * picks the playback rate that moves the depth toward the target.
   */
  watchDepth(frames) {
    const depth = this.depth;
    if (!this.playing) {
      const need = this.everPlayed ? this.resumeFrames : this.targetFrames;
      if (depth < need) return;
      this.playing = true;
      this.everPlayed = true;
      this.gain = 0;
      this.gainTarget = 1;
      this.smoothDepth = depth;
    }
    const reserve = FADE_FRAMES * (1 + MAX_RATE_DEVIATION) + 2 * frames + 4;
    if (this.gainTarget === 1 && depth < reserve) {
      this.gainTarget = 0;
      this.underruns++;
    } else if (this.gainTarget === 0 && depth >= this.resumeFrames) {
      this.gainTarget = 1;
    }
    this.steerRate(frames);
  }

  steerRate(frames) {
    const k = Math.min(1, frames / (DEPTH_SMOOTHING_S * sampleRate));
    this.smoothDepth += (this.depth - this.smoothDepth) * k;
    const errorS = (this.smoothDepth - this.targetFrames) / sampleRate;
    let wanted = 1;
    if (Math.abs(errorS) > RATE_DEAD_BAND_S) {
      const dev = (errorS - Math.sign(errorS) * RATE_DEAD_BAND_S) * RATE_PER_SECOND_OF_ERROR;
      wanted = 1 + Math.max(-MAX_RATE_DEVIATION, Math.min(MAX_RATE_DEVIATION, dev));
    }
    this.rate += Math.max(-RATE_SLEW, Math.min(RATE_SLEW, wanted - this.rate));
  }

  /** Plays `frames` output frames read from the ring at `rate`, with the
   * running gain, through 4-point Hermite interpolation; returns the chunk
   * that started in them, or -1. Stops (silent) once a fade-out ends. */
  renderResampled(outL, outR, frames) {
    const started = this.chunkStartingIn(this.readPos, frames * this.rate);
    if (started >= 0) this.startedOffset /= this.rate;
    const cap = this.capacity;
    const L = this.left;
    const R = this.right;
    const stereo = outR !== outL;
    const step = 1 / FADE_FRAMES;
    let pos = this.readPos;
    let played = 0;
    for (let i = 0; i < frames; i++) {
      const g = this.gain + Math.max(-step, Math.min(step, this.gainTarget - this.gain));
      this.gain = g;
      if (g <= 0 && this.gainTarget === 0) {
        outL[i] = 0;
        if (stereo) outR[i] = 0;
        continue;
      }
      const base = Math.floor(pos);
      const t = pos - base;
      const i0 = (base - 1 + cap) % cap;
      const i1 = base % cap;
      const i2 = (base + 1) % cap;
      const i3 = (base + 2) % cap;
      outL[i] = hermite(L[i0], L[i1], L[i2], L[i3], t) * g;
      if (stereo) outR[i] = hermite(R[i0], R[i1], R[i2], R[i3], t) * g;
      pos += this.rate;
      played++;
    }
    this.readPos = pos;
    this.framesPlayed += played;
    if (this.gain <= 0 && this.gainTarget === 0) {
      this.playing = false;
      this.rate = 1;
      this.silentFrames += frames - played;
    }
    return started;
  }

  /** Far too much buffered (beyond the hard cap): crossfade from the oldest
   * audio to audio `skipFrames` later, so the jump is not a click. */
  renderSkip(outL, outR, frames) {
    const cap = this.capacity;
    const stereo = outR !== outL;
    const from = Math.floor(this.readPos);
    for (let i = 0; i < frames; i++) {
      const a = (from + i) % cap;
      const b = (from + this.skipFrames + i) % cap;
      const w = (i + 1) / frames;
      const g = this.gain;
      outL[i] = (this.left[a] * (1 - w) + this.left[b] * w) * g;
      if (stereo) outR[i] = (this.right[a] * (1 - w) + this.right[b] * w) * g;
    }
    this.readPos = from + this.skipFrames;
    this.droppedFrames += this.skipFrames;
    this.skipFrames = 0;
    this.forgetChunksBefore(this.readPos);
    const started = this.chunkStartingIn(this.readPos, frames);
    this.readPos += frames;
    this.framesPlayed += frames;
    return started;
  }

  /** If a chunk's first frame lies in [from, from + span), consumes it from
   * the chunk list, keeps its offset in `startedOffset` and returns its
   * slot; else -1. */
  chunkStartingIn(from, span) {
    this.forgetChunksBefore(Math.floor(from));
    if (this.chunkHead === this.chunkTail) return -1;
    const i = this.chunkHead % MAX_CHUNKS;
    if (this.chunkStart[i] >= from + span) return -1;
    this.startedOffset = Math.max(0, this.chunkStart[i] - from);
    this.chunkHead++;
    return i;
  }

  report(started) {
    this.framesSinceReport = 0;
    const msg = {
      type: 'status',
      playing: this.playing,
      framesPlayed: this.framesPlayed,
      silentFrames: this.silentFrames,
      droppedFrames: this.droppedFrames,
      // The audio clock at this report: frames played are judged against
      // it, not against wall time, which a busy machine stretches.
      audioTime: currentFrame / sampleRate,
      depthFrames: this.depth,
      targetFrames: this.targetFrames,
      rate: this.rate,
      tier: this.tier + 1,
      tierChanges: this.tierChanges,
      jitterMs: this.jitterMs,
      underruns: this.underruns,
      splices: this.splices,
      lateSplices: this.lateSplices,
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

/** 4-point, 3rd-order Hermite interpolation between x1 and x2 at t ∈ [0, 1). */
function hermite(x0, x1, x2, x3, t) {
  const c1 = 0.5 * (x2 - x0);
  const c2 = x0 - 2.5 * x1 + 2 * x2 - 0.5 * x3;
  const c3 = 0.5 * (x3 - x0) + 1.5 * (x1 - x2);
  return ((c3 * t + c2) * t + c1) * t + x1;
}

registerProcessor('auralis-player', PlayerProcessor);
