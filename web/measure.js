// What the player measures about itself: end-to-end latency per chunk,
// control-to-audible latency per change, and how often the buffer ran dry.

const KEEP_SAMPLES = 200;
const UNDERRUN_WINDOW_MS = 60000;

export function percentile(values, p) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))];
}

function keep(list, v) {
  list.push(v);
  if (list.length > KEEP_SAMPLES) list.shift();
}

export class Measurements {
  constructor() {
    this.latency = [];
    this.controlLatency = [];
    // Controls sent and not yet acknowledged, oldest first.
    this.unacked = [];
    // Acknowledged controls waiting to be heard: { sentAt, conn, seq }.
    this.inFlight = [];
    this.underrunTimes = [];
  }

  controlSent(at) {
    this.unacked.push(at);
  }

  /** A `params` message: pairs the oldest unacknowledged control with the
   * chunk from which it is heard. A change made by another listener of a
   * room arrives with nothing unacknowledged and is not ours to time. */
  paramsAcked(conn, appliesAtSeq) {
    const sentAt = this.unacked.shift();
    if (sentAt !== undefined) this.inFlight.push({ sentAt, conn, seq: appliesAtSeq });
  }

  /** A new stream: what was sent on the old one will never be acknowledged. */
  streamChanged() {
    this.unacked = [];
    this.inFlight = [];
  }

  /**
   * The first frame of chunk `seq` (stamped `ts`, Unix s) reached the
   * listener at `heardAt` (client epoch ms). Returns the end-to-end latency
   * and any control-to-audible latencies this completes.
   */
  chunkHeard(conn, seq, ts, heardAt, offsetMs) {
    let latency = null;
    if (offsetMs !== null) {
      latency = heardAt - (ts * 1000 - offsetMs);
      keep(this.latency, latency);
    }
    const controls = [];
    // `>=`: if the exact chunk was skipped to keep latency bounded, the next
    // one heard carries the change.
    this.inFlight = this.inFlight.filter((c) => {
      if (c.conn !== conn || seq < c.seq) return true;
      const ms = heardAt - c.sentAt;
      keep(this.controlLatency, ms);
      controls.push(ms);
      return false;
    });
    return { latency, controls };
  }

  underrunsAdded(count, at) {
    for (let i = 0; i < count; i++) this.underrunTimes.push(at);
  }

  underrunsLastMinute(now) {
    while (this.underrunTimes.length > 0 && this.underrunTimes[0] < now - UNDERRUN_WINDOW_MS) {
      this.underrunTimes.shift();
    }
    return this.underrunTimes.length;
  }
}
