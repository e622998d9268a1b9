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
  return { proc, posted, render };
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

  test('chunks the server stamped together are not jitter', () => {
    const { proc } = loadWorklet();
    proc.receive(chunk(0, { ts: 10, arrival: 0 }));
    proc.receive(chunk(1, { ts: 10, arrival: 1 }));
    proc.receive(chunk(2, { ts: 10.1, arrival: 101 }));
    assert.ok(proc.jitterMs < 0.2, `jitter ${proc.jitterMs}`);
  });

  test('an underrun fades out, is counted, and re-buffers to target', () => {
    const { proc, render } = loadWorklet();
    for (let s = 0; s < 3; s++) proc.receive(chunk(s));
    const out = render(Math.ceil((3 * CHUNK) / QUANTUM) + 2);
    assert.equal(proc.underruns, 1);
    assert.equal(proc.playing, false);
    assert.ok(maxStep(out) < 0.01, `no click at the underrun: step ${maxStep(out)}`);
    assert.equal(out[out.length - 1], 0);
    proc.receive(chunk(3));
    proc.receive(chunk(4));
    assert.ok(render(2).every((x) => x === 0), 'still re-buffering below the target');
    proc.receive(chunk(5));
    render(1);
    assert.equal(proc.playing, true);
  });

  test('depth stays bounded: excess audio is skipped with a crossfade', () => {
    const { proc, render } = loadWorklet();
    for (let s = 0; s < 3; s++) proc.receive(chunk(s, { value: 0.2 }));
    render(10); // past the fade-in
    for (let s = 3; s < 13; s++) proc.receive(chunk(s, { value: 0.8 }));
    const maxFrames = (800 / 1000) * SR; // tier 1: 300 ms target + 500 ms headroom
    assert.ok(proc.depth > maxFrames, 'the burst overfilled the buffer');
    const out = render(1);
    assert.ok(Math.abs(out[0] - 0.2) < 0.01 && Math.abs(out[QUANTUM - 1] - 0.8) < 1e-6, 'crossfaded old to new');
    assert.ok(maxStep(out) < 0.01, `no click at the skip: step ${maxStep(out)}`);
    assert.equal(proc.depth, proc.targetFrames - QUANTUM);
  });

  test('slack never needed for a whole window is trimmed', () => {
    const { proc, render } = loadWorklet();
    // Six chunks before the first render: playback starts 300 ms too deep.
    let seq = 0;
    for (; seq < 6; seq++) proc.receive(chunk(seq));
    let rendered = 0;
    let minDepth = Infinity;
    let maxDepth = 0;
    const out = [];
    while (rendered < 5 * SR) {
      out.push(...render(1));
      rendered += QUANTUM;
      // Steady arrivals: a chunk for every 100 ms played.
      if (rendered >= (seq - 5) * CHUNK) proc.receive(chunk(seq++));
      if (rendered > 4 * SR) {
        minDepth = Math.min(minDepth, proc.depth);
        maxDepth = Math.max(maxDepth, proc.depth);
      }
    }
    assert.equal(proc.underruns, 0);
    const ms = (f) => Math.round((f / SR) * 1000);
    // Back to the steady range: from one chunk under the target to the target
    // (plus the part of a quantum a chunk can land before).
    assert.ok(maxDepth <= proc.targetFrames + QUANTUM, `max depth ${ms(maxDepth)} ms`);
    assert.ok(minDepth >= proc.targetFrames - CHUNK - QUANTUM, `min depth ${ms(minDepth)} ms`);
    assert.ok(maxStep(out) < 0.01, 'no click at the trim');
  });

  test('a flood while nothing renders is capped at target + 500 ms', () => {
    const { proc } = loadWorklet();
    for (let s = 0; s < 25; s++) proc.receive(chunk(s));
    assert.ok(proc.depth <= (800 / 1000) * SR && proc.depth >= proc.targetFrames, `depth ${proc.depth}`);
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
  test('doubles from 1 s, ±20 %, capped at 60 s', async () => {
    const { backoffDelay } = await web('connection.js');
    const at = (attempt, r) => backoffDelay(attempt, () => r);
    assert.deepEqual([1, 2, 3, 4, 5, 6].map((a) => at(a, 0.5)), [1000, 2000, 4000, 8000, 16000, 32000]);
    assert.equal(at(1, 0), 800);
    assert.equal(at(2, 1), 2400);
    assert.equal(at(7, 0.5), 60000);
    assert.equal(at(10, 0), 48000);
    assert.equal(at(10, 1), 60000);
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
