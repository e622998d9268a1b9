// The real `auralis serve` under test: started on 127.0.0.1, ready when it
// says so on stderr, killable and restartable on the same port.

import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import net from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const READY_TIMEOUT_MS = 30000;
const HERE = dirname(fileURLToPath(import.meta.url));

/** The binary every suite runs: `AURALIS_BIN` (relative to where the tests
 * were started), else the release build. */
export const BIN = process.env.AURALIS_BIN
  ? resolve(process.cwd(), process.env.AURALIS_BIN)
  : join(HERE, '../target/release/auralis');

/** Where the suites leave logs, screenshots and measurements (git-ignored). */
export const ARTIFACTS = join(HERE, 'artifacts');
mkdirSync(ARTIFACTS, { recursive: true });

/** The line `auralis serve` prints once it accepts connections, before its
 * address: `auralis::server::LISTENING` (tests/wire.rs checks they agree). */
export const LISTENING = 'auralis: listening on http://';

/** A port the kernel just handed out, so nothing else is listening on it. */
export async function freePort() {
  const srv = net.createServer();
  await new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', resolve);
  });
  const { port } = srv.address();
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

export class AuralisServer {
  /** `logPath` collects the server's stderr across restarts. */
  constructor(bin, port, logPath) {
    this.bin = bin;
    this.port = port;
    this.log = createWriteStream(logPath, { flags: 'w' });
    this.child = null;
  }

  get url() {
    return `http://127.0.0.1:${this.port}/`;
  }

  /** Spawns the server and resolves once it prints its listening line. */
  start() {
    const child = spawn(
      this.bin,
      ['serve', '--host', '127.0.0.1', '--port', String(this.port), '--builtin-font'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    this.child = child;
    const ready = `${LISTENING}127.0.0.1:${this.port}/`;
    return new Promise((resolve, reject) => {
      let seen = '';
      const timer = setTimeout(() => {
        fail(new Error(`server not ready after ${READY_TIMEOUT_MS} ms; stderr:\n${seen}`));
      }, READY_TIMEOUT_MS);
      const fail = (err) => {
        clearTimeout(timer);
        child.kill('SIGKILL');
        reject(err);
      };
      const onData = (buf) => {
        this.log.write(buf);
        if (seen.length < 64 * 1024) seen += buf.toString();
        if (seen.includes(ready)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stderr.on('data', onData);
      child.once('error', fail);
      child.once('exit', (code, signal) => {
        if (!seen.includes(ready)) fail(new Error(`server exited (${code ?? signal}) before listening:\n${seen}`));
      });
    });
  }

  /** SIGKILL, as a crash would: no close frames, no goodbyes. */
  async kill() {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  async stop() {
    await this.kill();
    await new Promise((resolve) => this.log.end(resolve));
  }
}
