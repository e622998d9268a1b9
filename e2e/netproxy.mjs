// A loopback TCP proxy that makes a link unsteady, for the network test:
// every segment from the server waits 80 ± 40 ms (in order, as TCP keeps
// it), now and then one is held a few hundred ms more as a lost segment's
// retransmission would be, `stall(ms)` holds everything for a while, and
// `cut()` drops every connection as a dead link would.
// The kernel here has no netem; this is its small, predictable stand-in.

import net from 'node:net';

export class NetProxy {
  /** Forwards 127.0.0.1:<listen port> to 127.0.0.1:`upstreamPort`.
   * `random` is injectable so a run can be repeated exactly. */
  constructor(upstreamPort, { delayMs = 80, jitterMs = 40, hiccupRate = 0.005, hiccupMs = 300, random = Math.random } = {}) {
    this.upstreamPort = upstreamPort;
    this.delayMs = delayMs;
    this.jitterMs = jitterMs;
    this.hiccupRate = hiccupRate;
    this.hiccupMs = hiccupMs;
    this.random = random;
    this.stallUntil = 0;
    this.sockets = new Set();
    this.server = net.createServer((client) => this.connect(client));
  }

  async listen() {
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', resolve);
    });
    return this.server.address().port;
  }

  /** Holds every server-to-client byte for `ms`; resolves when it ends. */
  stall(ms) {
    this.stallUntil = performance.now() + ms;
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  /** Drops every open connection at once: neither side gets a close frame,
   * as when a link dies. New connections are accepted as before. */
  cut() {
    for (const s of this.sockets) s.destroy();
  }

  connect(client) {
    const upstream = net.connect(this.upstreamPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.setNoDelay(true);
      s.on('close', () => this.sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (buf) => upstream.write(buf));
    client.on('end', () => upstream.end());
    // One queue and one timer per connection, so segments leave in the
    // order they came (timers of different lengths that fall due in the
    // same millisecond may fire in either order, which reordered the
    // stream under a stall).
    const queue = [];
    let last = 0;
    let ended = false;
    let timer = null;
    const pump = () => {
      timer = null;
      const now = performance.now();
      while (queue.length > 0 && queue[0].at <= now && now >= this.stallUntil) {
        const { buf } = queue.shift();
        if (!client.destroyed) client.write(buf);
      }
      if (queue.length > 0) {
        timer = setTimeout(pump, Math.max(1, Math.max(queue[0].at, this.stallUntil) - now));
      } else if (ended) {
        client.end();
      }
    };
    upstream.on('data', (buf) => {
      let at = performance.now() + this.delayMs + this.jitterMs * (2 * this.random() - 1);
      if (this.random() < this.hiccupRate) at += this.hiccupMs;
      at = Math.max(at, last, this.stallUntil);
      last = at;
      queue.push({ at, buf });
      if (timer === null) pump();
    });
    upstream.on('end', () => {
      ended = true;
      if (queue.length === 0 && timer === null) client.end();
    });
  }

  async close() {
    this.cut();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
