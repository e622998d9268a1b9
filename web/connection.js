// The WebSocket to /ws/stream, kept alive: when it drops, it is reopened
// with exponential backoff and ±20 % jitter (brief §4.4) so that a restarted
// server is not hit by every listener in the same instant. The first retry
// comes after 150 ms: most drops are a blip, and a server that is back
// should not wait out a whole backoff step.
//
// A reconnect resumes the same piece: the `hello` carries a resume token, and
// the next socket asks for it back together with the first chunk it still
// needs, so the server reattaches the session it kept (or, after a restart,
// rebuilds it from the parameters, seed and position) and the music goes on.

import { decodeBinaryFrame, decodeJsonChunk } from './wire.js';

const BASE_DELAY_MS = 150;
const MAX_DELAY_MS = 15000;
const MAX_ATTEMPTS = 10;
const JITTER = 0.2;

/** Delay before reconnect attempt `attempt` (1-based). */
export function backoffDelay(attempt, random = Math.random) {
  const base = Math.min(BASE_DELAY_MS * 2 ** (attempt - 1), MAX_DELAY_MS);
  return Math.min(base * (1 + JITTER * (2 * random() - 1)), MAX_DELAY_MS);
}

/**
 * Callbacks:
 *   onState({ name, attempt, maxAttempts, retryAt })  name: connecting |
 *     streaming | reconnecting | failed | stopped
 *   onHello(msg)                  a new stream began
 *   onChunk(chunk, conn, arrival) arrival: performance.now() at receipt
 *   onMessage(msg, conn)          any other server message (params, pong, error)
 * `url(resume)` is asked afresh for every attempt, so a reconnect carries
 * the settings current at that moment; `resume` is null on a fresh start,
 * else { token, from } (the next chunk seq wanted).
 */
export class Connection {
  constructor({ url, onState, onHello, onChunk, onMessage }) {
    this.url = url;
    this.handlers = { onState, onHello, onChunk, onMessage };
    this.ws = null;
    this.conn = 0;
    this.attempt = 0;
    this.timer = null;
    this.active = false;
    this.resume = null;
  }

  start() {
    if (this.active) return;
    this.active = true;
    this.attempt = 0;
    this.resume = null;
    this.open();
  }

  stop() {
    this.active = false;
    clearTimeout(this.timer);
    this.timer = null;
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.close(1000, 'listener stopped');
      this.ws = null;
    }
    this.setState({ name: 'stopped' });
  }

  /** Sends a JSON message if a stream is open; returns whether it was sent. */
  send(msg) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  open() {
    this.timer = null;
    this.setState({ name: 'connecting', attempt: this.attempt, maxAttempts: MAX_ATTEMPTS });
    const ws = new WebSocket(this.url(this.resume));
    ws.binaryType = 'arraybuffer';
    const conn = ++this.conn;
    ws.onmessage = (e) => this.receive(e.data, conn);
    ws.onclose = () => {
      if (this.ws === ws) this.ws = null;
      if (this.active) this.retry();
    };
    this.ws = ws;
  }

  receive(data, conn) {
    const arrival = performance.now();
    if (typeof data !== 'string') {
      const chunk = decodeBinaryFrame(data);
      if (chunk) this.chunk(chunk, conn, arrival);
      return;
    }
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (msg.type === 'audio_chunk') {
      this.chunk(decodeJsonChunk(msg), conn, arrival);
    } else if (msg.type === 'hello') {
      // Only a stream the server accepted counts as a success: a server that
      // accepts the socket and closes it at once still backs off.
      this.attempt = 0;
      if (typeof msg.resume === 'string') this.resume = { token: msg.resume, from: msg.next_seq };
      this.setState({ name: 'streaming' });
      this.handlers.onHello(msg);
    } else {
      this.handlers.onMessage(msg, conn);
    }
  }

  chunk(chunk, conn, arrival) {
    if (this.resume) this.resume.from = chunk.seq + 1;
    this.handlers.onChunk(chunk, conn, arrival);
  }

  retry() {
    if (this.attempt >= MAX_ATTEMPTS) {
      this.active = false;
      this.setState({ name: 'failed', attempt: this.attempt, maxAttempts: MAX_ATTEMPTS });
      return;
    }
    this.attempt++;
    const delay = backoffDelay(this.attempt);
    this.timer = setTimeout(() => this.open(), delay);
    this.setState({
      name: 'reconnecting',
      attempt: this.attempt,
      maxAttempts: MAX_ATTEMPTS,
      retryAt: performance.now() + delay,
    });
  }

  setState(state) {
    this.handlers.onState(state);
  }
}
