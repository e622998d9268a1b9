// What the network scenarios wait for, as conditions evaluated in the page
// (each a function of its argument, passed to the driver's waitFor), so that
// the Chromium suite (network.mjs) and the Firefox and WebKit run
// (network-engines.mjs) wait for the same things.

export const playing = () => window.auralis.stats().state === 'playing';

// The jitter raised the tier and the buffer has grown to the tier's target.
export const atRaisedTier = () => {
  const s = window.auralis.stats();
  return s.tier >= 2 && s.bufferMs >= s.targetMs - 20;
};

// argument: how many controls had been heard before the change.
export const controlHeard = (n) => window.auralis.latency().controlLatencyMs.length > n;

// argument: [underruns, framesPlayed] before the stall; a second has played since.
export const playingAfterStall = ([underruns, played]) => {
  const s = window.auralis.stats();
  return s.underruns > underruns && s.state === 'playing' && s.framesPlayed > played + 44100;
};

// argument: reconnects before the link was cut or the server went away.
export const reconnected = (n) => window.auralis.stats().reconnects > n;

// argument: [lastSeq] before the cut or the restart; a second of the piece
// has come since.
export const pieceGoesOn = ([seq]) => {
  const s = window.auralis.stats();
  return s.state === 'playing' && s.lastSeq > seq + 10;
};
