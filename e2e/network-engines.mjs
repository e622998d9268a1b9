// network.mjs's unsteady link in the other engines, run by hand (not by
// scripts/test.sh: about 40 s per engine, beyond the suite's time budget):
// Firefox with a PulseAudio null sink, and WebKit, each behind netproxy.mjs
// (80 ± 40 ms per segment, rare 300 ms hiccups) with a 3 s stall, a cut
// link and a SIGKILLed server. Prints and writes what each engine measured to
// artifacts/network-engines.json; a step that times out is recorded, and
// the run exits non-zero.
//
//   AURALIS_BIN=../target/release/auralis node network-engines.mjs

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { atRaisedTier, controlHeard, pieceGoesOn, playing, playingAfterStall, reconnected } from './conditions.mjs';
import { firefox, waitFor, webkit } from './drivers.mjs';
import { NetProxy } from './netproxy.mjs';
import { ARTIFACTS, AuralisServer, BIN, freePort } from './server.mjs';

const SR = 44100;
const STALL_MS = 3000;
const STEP_MS = 60000;

async function scenario(name, launch) {
  const server = new AuralisServer(BIN, await freePort(), join(ARTIFACTS, `network-${name}-server.log`));
  await server.start();
  const proxy = new NetProxy(server.port);
  const port = await proxy.listen();
  const b = await launch();
  const out = {};
  const stats = () => b.eval(() => window.auralis.stats());
  const until = (fn, arg, what) => waitFor(b, fn, arg, what, STEP_MS);
  const silence = (a, z) => Math.round(((z.silentFrames - a.silentFrames) / SR) * 100) / 100;
  try {
    await b.goto(`http://127.0.0.1:${port}/`);
    await until(() => !!window.auralis && document.querySelectorAll('#preset option').length >= 6, null, 'the page');
    await b.click('#start');
    await until(playing, null, 'playback');
    const first = await stats();
    await until(atRaisedTier, null, 'the buffer to reach a raised tier target');
    let s = await stats();
    out.growth = { tier: s.tier, targetMs: s.targetMs, seconds: Math.round(s.audioTime - first.audioTime), tierChanges: s.tierChanges, underruns: s.underruns, silenceS: silence(first, s) };

    let a = await stats();
    const heard = await b.eval(() => window.auralis.latency().controlLatencyMs.length);
    await b.select('#key', 'A');
    await until(controlHeard, heard, 'the key change to be heard');
    s = await stats();
    out.control = { latencyMs: Math.round(s.controlLatencyMs), bufferMs: Math.round(a.bufferMs), spliced: s.splices - a.splices, late: s.lateSplices - a.lateSplices, underruns: s.underruns - a.underruns, seqJumps: s.seqJumps - a.seqJumps };

    a = await stats();
    await proxy.stall(STALL_MS);
    await until(playingAfterStall, [a.underruns, a.framesPlayed], 'playback after the stall');
    s = await stats();
    out.stall = { stallS: STALL_MS / 1000, silenceS: silence(a, s), underruns: s.underruns - a.underruns, droppedFrames: s.droppedFrames - a.droppedFrames, seqJumps: s.seqJumps - a.seqJumps, reconnects: s.reconnects - a.reconnects };

    a = await stats();
    proxy.cut();
    await until(reconnected, a.reconnects, 'a reconnect after the cut');
    await until(pieceGoesOn, [a.lastSeq], 'the piece to go on after the cut');
    s = await stats();
    out.cut = { sameSession: s.sessionId === a.sessionId, silenceS: silence(a, s), seqJumps: s.seqJumps - a.seqJumps, droppedFrames: s.droppedFrames - a.droppedFrames, underruns: s.underruns - a.underruns };

    a = await stats();
    await server.kill();
    await server.start();
    await until(reconnected, a.reconnects, 'a reconnect');
    await until(pieceGoesOn, [a.lastSeq], 'the piece to go on');
    s = await stats();
    out.restart = { silenceS: silence(a, s), seqBefore: a.lastSeq, seqJumps: s.seqJumps - a.seqJumps, underruns: s.underruns - a.underruns };
    out.total = { underruns: s.underruns, tierChanges: s.tierChanges };
  } catch (e) {
    out.error = e.message;
  } finally {
    await b.close();
    await proxy.close();
    await server.stop();
  }
  return out;
}

const results = {};
for (const [name, launch] of [
  ['firefox-pulse', () => firefox({ pulse: true })],
  ['webkit', webkit],
]) {
  results[name] = await scenario(name, launch);
  console.log(`${name}: ${JSON.stringify(results[name])}`);
}
writeFileSync(join(ARTIFACTS, 'network-engines.json'), `${JSON.stringify(results, null, 2)}\n`);
if (Object.values(results).some((r) => r.error)) process.exitCode = 1;
