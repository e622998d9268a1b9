// The server's audio messages (DESIGN §3), decoded into what the worklet
// plays: planar Float32 left/right channels plus the chunk's seq and
// server timestamp.

const MAGIC = 0x41525541; // "AURA" read as a little-endian u32
const VERSION = 1;

/**
 * A binary frame: a 32-byte little-endian header, then interleaved i16 PCM.
 * Returns null for a frame this client cannot read (wrong magic or version),
 * so a newer server cannot make it play noise.
 */
export function decodeBinaryFrame(buffer) {
  if (buffer.byteLength < 32) return null;
  const view = new DataView(buffer);
  if (view.getUint32(0, true) !== MAGIC || view.getUint16(4, true) !== VERSION) return null;
  const headerLen = view.getUint16(6, true);
  const channels = view.getUint16(28, true);
  const frames = view.getUint16(30, true);
  if (headerLen + frames * channels * 2 > buffer.byteLength || headerLen % 2 !== 0) return null;
  return {
    seq: Number(view.getBigUint64(8, true)),
    timestamp: view.getFloat64(16, true),
    sampleRate: view.getUint32(24, true),
    ...toPlanar(new Int16Array(buffer, headerLen, frames * channels), channels),
  };
}

/** The brief's JSON `audio_chunk` message with base64 PCM (Appendix A.3). */
export function decodeJsonChunk(msg) {
  const binary = atob(msg.audio_data);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  const samples = new Int16Array(bytes.buffer, 0, bytes.length >> 1);
  return {
    seq: msg.seq,
    timestamp: msg.timestamp,
    sampleRate: msg.sample_rate,
    ...toPlanar(samples, msg.channels),
  };
}

/** Interleaved i16 → one Float32Array per channel; mono plays on both sides.
 * Int16Array reads in the platform's byte order, which is little-endian on
 * every platform a browser runs on, as the wire is. */
function toPlanar(samples, channels) {
  const frames = Math.floor(samples.length / channels);
  const left = new Float32Array(frames);
  const right = new Float32Array(frames);
  const scale = 1 / 32768;
  if (channels === 1) {
    for (let i = 0; i < frames; i++) left[i] = right[i] = samples[i] * scale;
  } else {
    for (let i = 0, j = 0; i < frames; i++, j += channels) {
      left[i] = samples[j] * scale;
      right[i] = samples[j + 1] * scale;
    }
  }
  return { frames, left, right };
}
