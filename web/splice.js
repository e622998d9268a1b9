// Which chunk a control names as "playing", so the server's splice lands in
// this player's buffer ahead of its playhead.

/** Server chunks are 100 ms (the wire protocol). */
const CHUNK_MS = 100;
/** The server's share of the trip: rendering the splice's pre-roll (about
 * 10–40 ms on one core, `auralis bench`) and sending the first chunk. */
const SERVER_MS = 40;

/**
 * The `playing_seq` of a control: the chunk at the playhead, moved on by
 * the chunks that will have played before the server's answer can arrive.
 * The server splices two chunks after it, which covers a trip of up to one
 * chunk from anywhere inside the chunk playing; a longer round trip (plus
 * twice the jitter, as the answer's chunks may come late) names a later
 * chunk, else the splice lands behind the playhead and a moment is heard
 * twice across its crossfade.
 *
 * `heard` is the last chunk reported starting (`seq`, and `time` on the
 * AudioContext clock); `now` is the context's current time in seconds.
 */
export function playingSeq(heard, now, rttMs, jitterMs) {
  const sinceHeard = Math.max(0, Math.floor(((now - heard.time) * 1000) / CHUNK_MS));
  const trip = (rttMs || 0) + 2 * (jitterMs || 0) + SERVER_MS;
  const lead = Math.max(0, Math.ceil(trip / CHUNK_MS) - 1);
  return heard.seq + sinceHeard + lead;
}
