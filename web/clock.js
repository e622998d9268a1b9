// The client's and the server's clocks compared through ping/pong, NTP
// style: the reply that came back fastest says the most about the offset,
// because its unknown one-way delays are the smallest.

/** Client wall-clock time in ms since the Unix epoch, with sub-ms precision
 * (Date.now() is whole ms). */
export function nowMs() {
  return performance.timeOrigin + performance.now();
}

const KEEP = 5;

export class ClockSync {
  constructor() {
    this.samples = [];
  }

  /** A pong for a ping sent at `t` (client ms), received at `receivedAt`. */
  addPong(t, serverTime, receivedAt) {
    const rtt = receivedAt - t;
    if (!(rtt >= 0)) return;
    this.samples.push({ rtt, offset: serverTime * 1000 - (t + rtt / 2) });
    if (this.samples.length > KEEP) this.samples.shift();
  }

  /** Server clock minus client clock, in ms; null before the first pong. */
  get offsetMs() {
    if (this.samples.length === 0) return null;
    return this.samples.reduce((best, s) => (s.rtt < best.rtt ? s : best)).offset;
  }

  get rttMs() {
    if (this.samples.length === 0) return null;
    return Math.min(...this.samples.map((s) => s.rtt));
  }

  reset() {
    this.samples = [];
  }
}
