// The player's pure parts, tested in Node before the browser starts: the
// jitter buffer (the worklet run in a vm with the AudioWorklet globals
// stubbed), the wire decoders, the backoff schedule, the measurements and
// the settings. Each is deterministic here, which the browser run is not.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

const WEB = join(dirname(fileURLToPath(import.meta.url)), '..', 'web');
const web = (file) => import(join(WEB, file));

const SR = 44100;
const CHUNK = 4410;
const QUANTUM = 128;

/** The worklet's processor class, with a port that records what it posts. */
function loadWorklet() {
  const posted = [];
  const globals = {
    sampleRate: SR,
    currentFrame: 0,
    AudioWorkletProcessor: class {
      constructor() {
        this.port = { postMessage: (m) => posted.push(m) };
      }
    },
    registerProcessor: (_name, cls) => {
      globals.Processor = cls;
    },
  };
  vm.createContext(globals);
  vm.runInContext(readFileSync(join(WEB, 'player-worklet.js'), 'utf8'), globals);
  const proc = new globals.Processor();
  const outL = new Float32Array(QUANTUM);
  const outR = new Float32Array(QUANTUM);
  /** Renders `n` quanta; returns every output sample of the left channel. */
  const render = (n = 1) => {
    const all = new Float32Array(n * QUANTUM);
    for (let i = 0; i < n; i++) {
      proc.process([], [[outL, outR]]);
      globals.currentFrame += QUANTUM;
      all.set(outL, i * QUANTUM);
    }
    return all;
  };
  return { proc, posted, render, globals };
}

/** A chunk whose samples all equal `value` (a step in value marks a seam). */
function chunk(seq, { ts = seq * 0.1, arrival = seq * 100, value = 0.5, conn = 1 } = {}) {
  return {
    type: 'chunk',
    conn,
    seq,
    ts,
    arrival,
    left: new Float32Array(CHUNK).fill(value),
    right: new Float32Array(CHUNK).fill(value),
  };
}

const maxStep = (xs) => {
  let m = 0;
  for (let i = 1; i < xs.length; i++) m = Math.max(m, Math.abs(xs[i] - xs[i - 1]));
  return m;
};

describe('jitter buffer (player-worklet.js)', () => {
  test('waits for 300 ms, then fades in', () => {
    const { proc, render } = loadWorklet();
    proc.receive(chunk(0));
    proc.receive(chunk(1));
    assert.ok(render(4).every((x) => x === 0), 'silent below the target');
    assert.equal(proc.playing, false);
    proc.receive(chunk(2));
    const out = render(10);
    assert.equal(proc.playing, true);
    assert.ok(out[0] > 0 && out[0] < 0.01, `starts from near silence: ${out[0]}`);
    assert.ok(Math.abs(out[out.length - 1] - 0.5) < 1e-6, 'reaches full level');
    assert.ok(maxStep(out) < 0.01, 'no click on the way in');
  });

  test('the jitter EMA picks the tier (brief §5.3, Appendix A.4)', () => {
    const { proc } = loadWorklet();
    proc.receive(chunk(0, { arrival: 0 }));
    proc.receive(chunk(1, { arrival: 105 }));
    assert.ok(Math.abs(proc.jitterMs - 0.5) < 1e-9, `0.1 × 5 ms = 0.5, got ${proc.jitterMs}`);
    assert.equal(proc.tier, 0);
    let arrival = 105;
    const targets = new Set();
    for (let seq = 2; seq < 40; seq++) {
      arrival += seq % 2 ? 40 : 160; // 60 ms off the 100 ms beat each time
      proc.receive(chunk(seq, { arrival }));
      targets.add(Math.round((proc.targetFrames / SR) * 1000));
    }
    assert.ok(proc.jitterMs > 50, `jitter ${proc.jitterMs}`);
    assert.equal(proc.tier, 3);
    assert.deepEqual([...targets].sort((a, b) => a - b), [300, 500, 700, 1000]);
  });

  test('chunks sent again from an earlier seq replace the buffer from there, crossfaded', () => {
    const { proc, render } = loadWorklet();
    for (let seq = 0; seq < 6; seq++) proc.receive(chunk(seq, { value: 0.5 }));
    render(40); // ~116 ms: chunk 1 has started; chunks 2–5 are still ahead
    const depth = proc.depth;
    // The server splices at chunk 3: it comes again, then 4 and 5.
    for (let seq = 3; seq < 6; seq++) proc.receive(chunk(seq, { value: -0.25, ts: 1 + seq * 0.1 }));
    assert.equal(proc.splices, 1);
    assert.equal(proc.lateSplices, 0);
    assert.equal(proc.depth, depth, 'the same audio span, replaced, not added');
    const out = render(Math.floor((proc.depth - 2000) / QUANTUM)); // stop short of an underrun
    const firstNew = out.findIndex((x) => x < 0.5 - 1e-6);
    const expected = 3 * CHUNK - 40 * QUANTUM;
    // The rate control may play a little fast (depth above target): a few per mille.
    assert.ok(Math.abs(firstNew - expected) < 100, `the old audio plays up to chunk 3: ${firstNew} vs ${expected}`);
    assert.ok(Math.abs(out[out.length - 1] + 0.25) < 1e-6, 'then the new audio');
    assert.ok(maxStep(out) < 0.002, `a crossfade, not a step: ${maxStep(out)}`);
    assert.equal(proc.droppedFrames, 0);
  });

  test('a splice that comes after its point has played goes in just ahead of the playhead', () => {
    const { proc, render } = loadWorklet();
    for (let seq = 0; seq < 6; seq++) proc.receive(chunk(seq, { value: 0.5 }));
    render(80); // ~232 ms: chunk 2 is playing
    for (let seq = 1; seq < 6; seq++) proc.receive(chunk(seq, { value: -0.25, ts: 1 + seq * 0.1 }));
    assert.equal(proc.lateSplices, 1);
    const out = render(60);
    assert.ok(Math.abs(out[0] - 0.5) < 1e-6, 'what was playing goes on');
    assert.ok(Math.abs(out[out.length - 1] + 0.25) < 1e-6, 'the change is heard within a few quanta');
    assert.ok(maxStep(out) < 0.002, `no click: ${maxStep(out)}`);
  });

  test('chunks the server stamped together are not jitter', () => {
    const { proc } = loadWorklet();
    proc.receive(chunk(0, { ts: 10, arrival: 0 }));
    proc.receive(chunk(1, { ts: 10, arrival: 1 }));
    proc.receive(chunk(2, { ts: 10.1, arrival: 101 }));
    assert.ok(proc.jitterMs < 0.2, `jitter ${proc.jitterMs}`);
  });

  test('an underrun fades out over 20 ms, is counted, and resumes at half the target', () => {
    const { proc, render } = loadWorklet();
    for (let s = 0; s < 3; s++) proc.receive(chunk(s));
    const out = render(Math.ceil((3 * CHUNK) / QUANTUM) + 2);
    assert.equal(proc.underruns, 1);
    assert.equal(proc.playing, false);
    assert.ok(maxStep(out) < 0.001, `no thump at the underrun: step ${maxStep(out)}`);
    assert.equal(out[out.length - 1], 0);
    const fade = out.filter((x) => x > 0 && x < 0.5 - 1e-6).length;
    assert.ok(fade >= 1700 && fade <= 1800, `fades of 20 ms (882 frames) in and out: ${fade}`);
    assert.equal(proc.droppedFrames, 0, 'every buffered frame was played');
    proc.receive(chunk(3));
    assert.ok(render(2).every((x) => x === 0), 'still re-buffering below 200 ms');
    proc.receive(chunk(4));
    render(1);
    assert.equal(proc.playing, true, 'resumes at 200 ms, not the whole target');
  });

  test('a burst after a stall is played, not skipped; the rate wins the latency back', () => {
    const { proc, render } = loadWorklet();
    const sine = (seq) => {
      const c = chunk(seq);
      for (let i = 0; i < CHUNK; i++) c.left[i] = c.right[i] = 0.5 * Math.sin((2 * Math.PI * 10 * (seq * CHUNK + i)) / SR);
      return c;
    };
    let seq = 0;
    for (; seq < 3; seq++) proc.receive(sine(seq));
    render(Math.ceil(SR / QUANTUM)); // a second: the buffer runs dry
    assert.equal(proc.underruns, 1);
    for (let i = 0; i < 30; i++) proc.receive(sine(seq++)); // the 3 s the stall held back
    const deep = proc.depth;
    let rendered = 0;
    let out = [];
    while (rendered < 60 * SR) {
      out = render(1);
      rendered += QUANTUM;
      if (rendered >= (seq - 32) * CHUNK) proc.receive(sine(seq++));
    }
    assert.equal(proc.droppedFrames, 0, 'nothing skipped');
    assert.equal(proc.underruns, 1, 'no second underrun');
    assert.ok(proc.depth < deep - 1.2 * SR, `latency won back: ${deep} → ${proc.depth} frames`);
    assert.ok(proc.rate > 1 && proc.rate <= 1.03, `played a little fast: ${proc.rate}`);
    assert.ok(maxStep(out) < 0.01);
  });

  test('when the tier rises the buffer grows while playing, without an underrun', () => {
    const { proc, render } = loadWorklet();
    let seq = 0;
    let arrival = 0;
    for (; seq < 3; seq++) proc.receive(chunk(seq, { arrival: (arrival += 100) }));
    let rendered = 0;
    let jittery = false;
    const grown = [];
    while (rendered < 60 * SR) {
      render(1);
      rendered += QUANTUM;
      if (rendered >= 5 * SR) jittery = true;
      // One chunk per 100 ms of audio, as the server sends; only the arrival
      // stamps jitter, which is what raises the tier.
      if (rendered >= (seq - 3) * CHUNK) {
        arrival += jittery ? (seq % 2 ? 40 : 160) : 100;
        proc.receive(chunk(seq++, { arrival }));
      }
      if (rendered > 50 * SR) grown.push(proc.depth);
    }
    assert.equal(proc.tier, 3, 'the jitter calls for tier 4');
    assert.equal(proc.underruns, 0);
    assert.equal(proc.silentFrames, 0);
    assert.ok(Math.max(...grown) >= proc.targetFrames - QUANTUM, `reached the 1000 ms target: max ${Math.max(...grown)}`);
    assert.ok(proc.tierChanges <= 3, `${proc.tierChanges} tier changes`);
  });

  test('the tier holds: a jitter hovering at a ceiling does not flap', () => {
    const { proc, globals } = loadWorklet();
    let arrival = 0;
    // 84 s of chunks whose jitter EMA wanders around the 10 ms ceiling.
    for (let seq = 0; seq < 840; seq++) {
      globals.currentFrame = seq * CHUNK;
      arrival += 100 + (Math.floor(seq / 7) % 2 ? 14 : -6);
      proc.receive(chunk(seq, { arrival }));
    }
    assert.ok(proc.tierChanges <= 2, `${proc.tierChanges} tier changes in 84 s`);
    // Calm again: down one step after holding for 10 s.
    for (let seq = 840; seq < 1000; seq++) {
      globals.currentFrame = seq * CHUNK;
      arrival += 100;
      proc.receive(chunk(seq, { arrival }));
    }
    assert.equal(proc.tier, 0);
  });

  test('beyond the 6 s hard cap the oldest audio goes', () => {
    const { proc } = loadWorklet();
    for (let s = 0; s < 75; s++) proc.receive(chunk(s));
    assert.ok(proc.depth <= 6 * SR && proc.depth >= proc.targetFrames, `depth ${proc.depth}`);
    assert.ok(proc.droppedFrames > 0);
  });

  test('reports which chunk reached the output, and when', () => {
    const { proc, posted, render } = loadWorklet();
    for (let s = 0; s < 3; s++) proc.receive(chunk(s, { ts: 100 + s / 10 }));
    const quanta = Math.ceil((CHUNK + QUANTUM) / QUANTUM);
    render(quanta);
    const started = posted.filter((m) => m.started).map((m) => m.started);
    assert.deepEqual(
      started.map((s) => [s.seq, s.ts, s.time]),
      [
        [0, 100, 0],
        [1, 100.1, CHUNK / SR],
      ],
    );
    assert.equal(proc.framesPlayed, quanta * QUANTUM);
    assert.equal(posted[posted.length - 1].tier, 1);
  });
});

describe('wire decoding (wire.js)', () => {
  const pcm = new Int16Array([0, 0, 16384, -16384, -32768, 32767]);

  test('binary frames: the 32-byte header, then planar floats', async () => {
    const { decodeBinaryFrame } = await web('wire.js');
    const buf = new ArrayBuffer(32 + pcm.byteLength);
    const v = new DataView(buf);
    new Uint8Array(buf).set(new TextEncoder().encode('AURA'), 0);
    v.setUint16(4, 1, true);
    v.setUint16(6, 32, true);
    v.setBigUint64(8, 123456789n, true);
    v.setFloat64(16, 1700000000.25, true);
    v.setUint32(24, SR, true);
    v.setUint16(28, 2, true);
    v.setUint16(30, 3, true);
    new Int16Array(buf, 32).set(pcm);
    const c = decodeBinaryFrame(buf);
    assert.equal(c.seq, 123456789);
    assert.equal(c.timestamp, 1700000000.25);
    assert.equal(c.sampleRate, SR);
    assert.deepEqual([...c.left], [0, 0.5, -1]);
    assert.deepEqual([...c.right], [0, -0.5, 32767 / 32768]);
    v.setUint16(4, 2, true);
    assert.equal(decodeBinaryFrame(buf), null, 'an unknown version is refused');
  });

  test('JSON chunks (Appendix A.3) decode to the same audio', async () => {
    const { decodeJsonChunk } = await web('wire.js');
    const c = decodeJsonChunk({
      type: 'audio_chunk',
      seq: 7,
      timestamp: 1.5,
      duration_ms: 100,
      sample_rate: SR,
      channels: 2,
      audio_data: Buffer.from(pcm.buffer).toString('base64'),
    });
    assert.equal(c.seq, 7);
    assert.deepEqual([...c.left], [0, 0.5, -1]);
    assert.deepEqual([...c.right], [0, -0.5, 32767 / 32768]);
  });
});

describe('reconnect backoff (connection.js, brief §4.4)', () => {
  test('doubles from 150 ms, ±20 %, capped at 15 s', async () => {
    const { backoffDelay } = await web('connection.js');
    const at = (attempt, r) => backoffDelay(attempt, () => r);
    assert.deepEqual([1, 2, 3, 4, 5, 6].map((a) => at(a, 0.5)), [150, 300, 600, 1200, 2400, 4800]);
    assert.equal(at(1, 0), 120);
    assert.equal(at(2, 1), 360);
    assert.equal(at(8, 0.5), 15000);
    assert.equal(at(10, 0), 12000);
    assert.equal(at(10, 1), 15000);
  });
});

describe('the chunk a control names as playing (splice.js)', () => {
  test('on loopback, the chunk heard; later by the chunks played since and by the round trip', async () => {
    const { playingSeq } = await web('splice.js');
    const heard = { seq: 40, time: 10 };
    // Loopback: the server's two chunks ahead cover the trip.
    assert.equal(playingSeq(heard, 10.02, 1, 2), 40);
    assert.equal(playingSeq(heard, 10.25, 1, 2), 42, 'two chunks have started since the report');
    // 80 ± 40 ms: 120 ms of round trip and 30 ms of jitter need two more.
    assert.equal(playingSeq(heard, 10.02, 120, 30), 42);
    // A 400 ms round trip: four more.
    assert.equal(playingSeq(heard, 10.02, 400, 10), 44);
    // Before the first pong or jitter figure: as on loopback.
    assert.equal(playingSeq(heard, 10.02, null, undefined), 40);
  });
});

describe('output latency (player.js)', () => {
  test('is not read in Gecko, whose getter can deadlock the page; read elsewhere', async () => {
    const { readsOutputLatency } = await web('player.js');
    const firefox = 'Mozilla/5.0 (X11; Linux x86_64; rv:153.0) Gecko/20100101 Firefox/153.0';
    const chrome = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36';
    const safari = 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1';
    assert.equal(readsOutputLatency(firefox), false);
    assert.equal(readsOutputLatency(chrome), true);
    assert.equal(readsOutputLatency(safari), true);
  });
});

describe('measurements (measure.js)', () => {
  test('control-to-audible pairs each ack with the chunk it names', async () => {
    const { Measurements } = await web('measure.js');
    const m = new Measurements();
    m.controlSent(1000);
    m.paramsAcked(1, 50);
    m.paramsAcked(1, 60); // another listener's change: nothing of ours to time
    assert.deepEqual(m.chunkHeard(1, 49, 0, 1400, 0).controls, []);
    assert.deepEqual(m.chunkHeard(1, 51, 0, 1600, 0).controls, [600], 'a skipped chunk 50: the next one counts');
    assert.deepEqual(m.chunkHeard(1, 52, 0, 1700, 0).controls, []);
  });

  test('end-to-end latency corrects for the clock offset', async () => {
    const { Measurements } = await web('measure.js');
    const m = new Measurements();
    // Server clock 250 ms ahead; generated at server 10.000 s, heard at client 10.050 s.
    assert.equal(m.chunkHeard(1, 0, 10, 10050, 250).latency, 300);
    assert.equal(m.chunkHeard(1, 1, 10, 10050, null).latency, null, 'no offset yet, no sample');
  });

  test('underruns are counted over the last minute', async () => {
    const { Measurements } = await web('measure.js');
    const m = new Measurements();
    m.underrunsAdded(3, 0);
    m.underrunsAdded(4, 30000);
    assert.equal(m.underrunsLastMinute(50000), 7);
    assert.equal(m.underrunsLastMinute(70000), 4);
  });
});

describe('settings (settings.js)', () => {
  // The server's parameter table as /api/status sends it (see tests/http.rs).
  const CONTROLS = [
    { name: 'preset', type: 'preset', values: ['focus', 'calm'], default: 'focus' },
    { name: 'key', type: 'key', values: ['C', 'C#', 'D', 'F'], default: 'D' },
    { name: 'mode', type: 'mode', values: ['dorian', 'lydian'], default: 'dorian' },
    { name: 'bpm', type: 'number', min: 40, max: 120, step: 1, default: 60 },
    { name: 'intensity', type: 'number', min: 0, max: 1, step: 0.01, default: 0.5 },
    { name: 'seed', type: 'seed', default: 0 },
  ];

  test('stored values are validated against the server table; the query carries them all', async () => {
    const store = new Map();
    globalThis.localStorage = {
      getItem: (k) => store.get(k) ?? null,
      setItem: (k, v) => store.set(k, v),
    };
    try {
      const { defaults, loadSettings, saveSettings, streamQuery, useControls } = await web('settings.js');
      useControls([]);
      assert.deepEqual(loadSettings(), { volume: 0.8 }, 'before the table only the volume is known');
      assert.equal(streamQuery(loadSettings(), 'binary').toString(), 'format=binary');
      useControls(CONTROLS);
      const DEFAULTS = defaults();
      assert.deepEqual(DEFAULTS, { preset: 'focus', key: 'D', mode: 'dorian', bpm: 60, intensity: 0.5, volume: 0.8 });
      assert.deepEqual(loadSettings(), DEFAULTS);
      saveSettings({ ...DEFAULTS, key: 'F', bpm: 90 });
      assert.equal(loadSettings().bpm, 90);
      store.set('auralis.settings.v1', JSON.stringify({ key: 'H', bpm: 300, mode: 'lydian', volume: 0.25 }));
      const s = loadSettings();
      assert.deepEqual([s.key, s.bpm, s.mode, s.volume], ['D', 60, 'lydian', 0.25]);
      assert.equal(
        streamQuery(s, 'json').toString(),
        'format=json&preset=focus&key=D&mode=lydian&bpm=60&intensity=0.5',
      );
    } finally {
      delete globalThis.localStorage;
    }
  });
});
