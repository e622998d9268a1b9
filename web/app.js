// The page: wires the controls, the connection, the player and the
// measurements together, and shows what is happening.

import { ClockSync, nowMs } from './clock.js';
import { AudioUnavailable, keepRunning } from './audio-session.js';
import { Connection } from './connection.js';
import { fetchWithProgress, saveBlob } from './download.js';
import { BackgroundPlayer, listenUrl } from './listen.js';
import { Measurements, percentile } from './measure.js';
import { Meter } from './meter.js';
import { Player } from './player.js';
import {
  control,
  isValid,
  loadSettings,
  musicNames,
  saveSettings,
  streamQuery,
  useControls,
} from './settings.js';
import { linkFor, readLink } from './share.js';
import { playingSeq } from './splice.js';
import { formatLeft, SleepTimer, timerSeconds } from './timer.js';

/** Ping (clock offset) and stats (server metrics) cadence. */
const REPORT_MS = 2000;
const UNDERRUN_WARNING_PER_MINUTE = 5;
/** The server's bound on /download.*?minutes=, checked here first so a
 * slip of the keyboard gets its answer without a request. */
const MAX_DOWNLOAD_MINUTES = 60;
/** What a preset sets: every music control but the preset's own name. */
const musicParams = () => musicNames().filter((n) => n !== 'preset');

const $ = (id) => document.getElementById(id);
const format = new URLSearchParams(location.search).get('format') === 'json' ? 'json' : 'binary';
const settings = loadSettings();
const clock = new ClockSync();
const measure = new Measurements();

const app = {
  connection: { name: 'idle' },
  playing: false,
  contextError: null,
  stopping: false,
  worklet: null, // the worklet's latest status report
  preset: null, // what the server says holds
  params: null,
  presets: [],
  reconnects: 0,
  // The server's session: a reconnect that finds it kept brings back the
  // same id, one that rebuilds the piece a new one.
  sessionId: null,
  streamsSinceStart: 0,
  underrunsAtStream: 0,
  lastUnderruns: 0,
  latencyMs: null,
  controlLatencyMs: null,
  // The seq of the last chunk received, and how often the next one was not
  // the one after it (a new piece, or music missed across a reconnect);
  // with no dropped frames in the worklet, what arrives in order is heard
  // in order.
  lastSeq: null,
  seqJumps: 0,
  // Control changes the server spliced into the buffered audio.
  splices: 0,
  // The chunk last heard starting, and the connection that brought chunks
  // last: a control tells the server the first when both match.
  heard: null,
  conn: null,
  serverMessage: null,
};

let player = null;
let meter = null;
const background = new BackgroundPlayer($('background-audio'), () => {
  renderState();
});
let reportTimer = null;
let countdownTimer = null;
const sleepTimer = new SleepTimer();
/** A timer chosen before the stream began: it starts with the stream. */
let pendingTimer = null;
/** The seed of what plays (a string: u64 seeds exceed 2^53); the link's until
 * the server says otherwise. */
let shareSeed = '0';
let linkApplied = false;

const connection = new Connection({
  url: (resume) => {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const q = streamQuery(settings, format);
    q.set('seed', shareSeed);
    // The same piece, from the first chunk not yet received: the seed too,
    // so a restarted server that no longer knows the token rebuilds it.
    if (resume && app.params) {
      q.set('resume', resume.token);
      q.set('from', String(resume.from));
      q.set('seed', String(app.params.seed));
    }
    return `${scheme}://${location.host}/ws/stream?${q}`;
  },
  onState: (state) => {
    app.connection = state;
    clearInterval(countdownTimer);
    if (state.name === 'reconnecting') countdownTimer = setInterval(renderState, 100);
    if (state.name !== 'streaming') clearInterval(reportTimer);
    if (state.name === 'ended') timerEnded();
    renderState();
  },
  onHello,
  onChunk: (chunk, conn, arrival) => {
    if (app.lastSeq !== null && chunk.seq !== app.lastSeq + 1) app.seqJumps++;
    app.lastSeq = chunk.seq;
    app.conn = conn;
    player.push(chunk, conn, arrival);
  },
  onMessage,
});

// ---- Stream messages ----------------------------------------------------

function onHello(msg) {
  if (app.streamsSinceStart > 0) app.reconnects++;
  app.streamsSinceStart++;
  app.sessionId = msg.session_id;
  app.underrunsAtStream = app.lastUnderruns;
  app.serverMessage = null;
  measure.streamChanged();
  // A new connection may be a new server process; its clock is measured afresh.
  clock.reset();
  applyServerParams(msg.preset, msg.params);
  if (app.presets.length === 0) loadStatus();
  clearInterval(reportTimer);
  if (pendingTimer !== null) {
    sleepTimer.set(pendingTimer);
    pendingTimer = null;
  }
  if (sleepTimer.armed) connection.send(sleepTimer.message());
  ping();
  reportTimer = setInterval(() => {
    ping();
    sendStats();
  }, REPORT_MS);
  renderAll();
}

function onMessage(msg, conn) {
  switch (msg.type) {
    case 'params':
      measure.paramsAcked(conn, msg.applies_at_seq);
      // The chunks from `splice_seq` come again with the change in them:
      // the worklet replaces what it buffered from there; not a jump.
      if (Number.isInteger(msg.splice_seq)) {
        app.lastSeq = msg.splice_seq - 1;
        app.splices++;
      }
      applyServerParams(msg.preset, msg);
      break;
    case 'pong':
      clock.addPong(msg.t, msg.server_time, nowMs());
      break;
    case 'error':
      app.serverMessage = `server: ${msg.message} (${msg.code})`;
      renderMessage();
      break;
    default:
      break;
  }
}

function ping() {
  connection.send({ type: 'ping', t: nowMs() });
}

/** Underruns are counted per stream: the server adds up what each
 * connection reports, so a total carried across reconnects would count twice. */
function sendStats() {
  const w = app.worklet;
  if (!w) return;
  connection.send({
    type: 'stats',
    buffer_ms: framesToMs(w.depthFrames),
    underruns: w.underruns - app.underrunsAtStream,
    latency_ms: app.latencyMs ?? undefined,
    jitter_ms: w.jitterMs,
  });
}

/** The server's word on what plays now (hello or params) becomes the saved
 * settings too, so a reconnect asks for exactly this. */
function applyServerParams(preset, params) {
  app.preset = preset ?? null;
  app.params = {
    key: params.key,
    mode: params.mode,
    bpm: tidy(params.bpm),
    intensity: tidy(params.intensity),
    seed: params.seed,
    pad_program: params.pad_program,
    journey: params.journey,
    hour: params.hour,
  };
  if (params.seed !== undefined) shareSeed = String(params.seed);
  if (isValid('preset', preset)) settings.preset = preset;
  for (const name of musicParams()) {
    if (isValid(name, app.params[name])) settings[name] = app.params[name];
  }
  saveSettings(settings);
  renderControls();
  renderNowPlaying();
}

/** The server keeps tempo and intensity as f32 and sends them widened to
 * f64 (0.35 arrives as 0.3499999940395355); six significant digits give the
 * value that was meant back. */
function tidy(v) {
  return typeof v === 'number' ? Number(v.toPrecision(6)) : v;
}

// ---- Worklet reports ------------------------------------------------------

function onWorkletStatus(status) {
  const now = nowMs();
  if (status.underruns > app.lastUnderruns) {
    measure.underrunsAdded(status.underruns - app.lastUnderruns, now);
  }
  app.lastUnderruns = status.underruns;
  // A finished timer's fade has played out: the player rests.
  if (app.connection.name === 'ended' && status.depthFrames === 0 && app.playing) {
    meter.stop();
    player.suspend();
  }
  app.worklet = status;
  app.playing = status.playing;
  const started = status.started;
  if (started) {
    app.heard = { conn: started.conn, seq: started.seq, time: started.time };
    const heardAt = player.heardAt(started.time);
    const { latency, controls } = measure.chunkHeard(
      started.conn,
      started.seq,
      started.ts,
      heardAt,
      clock.offsetMs,
    );
    if (latency !== null) app.latencyMs = latency;
    for (const ms of controls) {
      app.controlLatencyMs = ms;
      connection.send({ type: 'stats', control_latency_ms: ms });
    }
  }
  renderHealth();
  renderState();
}

// ---- Start / stop ---------------------------------------------------------

async function toggle() {
  const button = $('start');
  button.disabled = true;
  try {
    if (button.getAttribute('aria-pressed') === 'true') await stop();
    else await start();
  } finally {
    button.disabled = false;
  }
}

async function start() {
  if ($('background-mode').checked) {
    try {
      await background.start(listenUrl(settings, background.format), settings.preset, settings.volume);
    } catch (e) {
      app.contextError = `audio unavailable: ${e.message}`;
      renderState();
      return;
    }
    app.contextError = null;
    showBackgroundPiece();
    setPressed(true);
    return;
  }
  try {
    if (!player) {
      player = await Player.create(onWorkletStatus);
      player.setVolume(settings.volume);
      meter = new Meter($('meter'), player.analyser);
      keepRunning(player.ctx, { wanted: wantsMusic, onWake: wake, onError: audioFailed });
    } else {
      await player.resume();
      player.setVolume(settings.volume);
    }
  } catch (e) {
    audioFailed(e);
    return;
  }
  app.contextError = null;
  app.streamsSinceStart = 0;
  app.lastSeq = null;
  meter.start();
  connection.start();
  setPressed(true);
}

/** Pressed Start and not Stop since, in the AudioWorklet mode. */
function wantsMusic() {
  return $('start').getAttribute('aria-pressed') === 'true' && !background.active && !app.stopping;
}

/** The output is back (an interruption ended, the page is shown again):
 * a stream that gave up or was torn down meanwhile starts again now rather
 * than after its backoff. */
function wake() {
  app.contextError = null;
  const c = app.connection.name;
  if (c === 'reconnecting') connection.stop();
  if (c === 'failed' || c === 'stopped' || c === 'reconnecting') connection.start();
  renderState();
}

function audioFailed(e) {
  const why = e instanceof AudioUnavailable ? e.message : `${e.name}: ${e.message}`;
  app.contextError = `audio unavailable: ${why}`;
  renderState();
}

async function stop() {
  app.stopping = true;
  try {
    await stopPlaying();
  } finally {
    app.stopping = false;
  }
}

async function stopPlaying() {
  if (background.active) {
    background.stop();
    $('meter').hidden = false;
    setPressed(false);
    renderState();
    return;
  }
  // Fade what is playing before anything stops: a stop is never a cut.
  await player.fadeOut();
  connection.stop();
  player.flush();
  app.playing = false;
  meter.stop();
  await player.suspend();
  setPressed(false);
}

function setPressed(on) {
  const button = $('start');
  button.setAttribute('aria-pressed', String(on));
  button.textContent = on ? 'Stop' : 'Start';
}

// ---- Controls -------------------------------------------------------------

function fillSelect(select, values) {
  select.replaceChildren(
    ...values.map((v) => {
      const o = document.createElement('option');
      o.value = v;
      o.textContent = v;
      return o;
    }),
  );
}

function setupControls() {
  // Until /api/status answers, the saved preset is the only one known.
  if (settings.preset !== undefined) fillSelect($('preset'), [settings.preset]);

  $('preset').addEventListener('change', (e) => choosePreset(e.target.value));
  $('key').addEventListener('change', (e) => change('key', e.target.value));
  $('mode').addEventListener('change', (e) => change('mode', e.target.value));
  $('journey').addEventListener('change', (e) => change('journey', e.target.value));
  // Sliders send on release ('change'), not on every step ('input'): the
  // server allows 20 messages a second and each change restages the music.
  for (const name of ['bpm', 'intensity']) {
    $(name).addEventListener('input', renderOutputs);
    $(name).addEventListener('change', (e) => change(name, Number(e.target.value)));
  }
  $('volume').addEventListener('input', (e) => change('volume', Number(e.target.value)));
  $('start').addEventListener('click', toggle);
  $('copy-url').addEventListener('click', copyStreamUrl);
  $('timer').addEventListener('change', chooseTimer);
  $('timer-custom').addEventListener('change', chooseTimer);
  $('share').addEventListener('click', share);
  $('download').addEventListener('click', download);
  setInterval(renderTimer, 250);
  renderControls();
}

function change(name, value) {
  if (!isValid(name, value)) return;
  settings[name] = value;
  saveSettings(settings);
  if (name === 'volume') {
    player?.setVolume(value);
    background.setVolume(value);
    renderOutputs();
    return;
  }
  sendControl({ [name]: value });
  restartBackground();
}

/** Tells the server which chunk is playing, so it can splice the change
 * into what this player has buffered instead of after it. */
function sendControl(params) {
  const msg = { type: 'control', params };
  if (player && app.playing && app.heard && app.heard.conn === app.conn) {
    msg.playing_seq = playingSeq(app.heard, player.ctx.currentTime, clock.rttMs, app.worklet?.jitterMs);
  }
  if (connection.send(msg)) measure.controlSent(nowMs());
}

/** The HTTP stream has no control channel: a change starts it afresh. */
function restartBackground() {
  renderListenLinks();
  if (!background.playing) return;
  background.start(listenUrl(settings, background.format), settings.preset, settings.volume).catch(() => renderState());
  showBackgroundPiece();
}

/** The HTTP stream sends no `hello`: what plays is what its URL asked for.
 * The spectrum comes from the worklet path, which the audio element does
 * not go through (routing it through Web Audio would tie it to an
 * AudioContext, which background tabs suspend), so the meter steps aside. */
function showBackgroundPiece() {
  app.preset = settings.preset ?? null;
  app.params = {
    key: settings.key,
    mode: settings.mode,
    bpm: settings.bpm,
    intensity: settings.intensity,
    seed: app.params?.seed,
    pad_program: settings.pad_program,
  };
  $('meter').hidden = true;
  renderNowPlaying();
}

/** A preset replaces key, mode, tempo and intensity; they are set here too,
 * so a query built before the server answers does not undo the preset. */
function choosePreset(name) {
  const p = app.presets.find((x) => x.name === name);
  if (!p) return;
  settings.preset = name;
  for (const k of musicParams()) if (isValid(k, p[k])) settings[k] = p[k];
  saveSettings(settings);
  renderControls();
  sendControl({ preset: name });
  restartBackground();
}

/** The server's parameter table: the choices of the selects, the ranges of
 * the sliders, and which saved settings are still valid. */
function applyControls(list) {
  useControls(list);
  Object.assign(settings, loadSettings(), { volume: settings.volume });
  // A daylight journey follows this listener's clock, read now.
  const now = new Date();
  if (control('hour')) settings.hour = now.getHours() + Math.floor(now.getMinutes() / 15) / 4;
  for (const name of musicNames()) {
    const c = control(name);
    const el = $(name);
    if (!el) continue;
    if (c.type === 'number') {
      el.min = String(c.min);
      el.max = String(c.max);
      el.step = String(c.step);
    } else if (Array.isArray(c.values) && name !== 'preset') {
      fillSelect(el, c.values);
    }
  }
}

async function loadStatus() {
  try {
    const res = await fetch('/api/status');
    if (!res.ok) return;
    const status = await res.json();
    applyControls(status.controls);
    app.presets = (Array.isArray(status.presets) ? status.presets : []).map((p) => ({
      ...p,
      bpm: tidy(p.bpm),
      intensity: tidy(p.intensity),
    }));
    const names = app.presets.map((p) => p.name);
    if (!names.includes(settings.preset)) names.unshift(settings.preset);
    fillSelect($('preset'), names);
    applyLink();
    renderControls();
    renderNowPlaying();
    renderAttribution(status.soundfonts);
  } catch {
    // The server is down; loadStatus runs again on the next hello.
  }
}

// ---- Rendering ------------------------------------------------------------

/** Only called with a worklet report in hand, so the player exists. */
function framesToMs(frames) {
  return (frames / player.sampleRate) * 1000;
}

function fmtMs(v) {
  return v === null || v === undefined ? '—' : `${Math.round(v)} ms`;
}

function renderControls() {
  for (const name of ['preset', 'key', 'mode', 'bpm', 'intensity', 'journey', 'volume']) {
    if (settings[name] === undefined) continue;
    $(name).value = String(settings[name]);
  }
  renderOutputs();
  renderListenLinks();
}

function renderListenLinks() {
  const opus = listenUrl(settings, 'opus');
  $('stream-url').value = opus;
  $('open-url').href = opus;
  $('wav-url').href = listenUrl(settings, 'wav');
  $('audio-unavailable-url').href = opus;
  // Until the link's own values are read, the address is left as it came.
  if (linkApplied) history.replaceState(history.state, '', linkFor(linkMusic()));
}

// ---- Timer, share link, download -----------------------------------------

function chooseTimer() {
  const choice = $('timer').value;
  $('timer-custom').hidden = choice !== 'custom';
  const seconds = timerSeconds(choice, $('timer-custom').value);
  if (app.connection.name === 'streaming') {
    sleepTimer.set(seconds);
    connection.send(sleepTimer.message());
  } else {
    pendingTimer = seconds;
    sleepTimer.set(null);
  }
  renderTimer();
}

function timerEnded() {
  sleepTimer.set(null);
  pendingTimer = null;
  $('timer').value = '';
  $('timer-custom').hidden = true;
  setPressed(false);
}

function renderTimer() {
  const el = $('timer-left');
  const left = sleepTimer.left();
  let text = '';
  if (left !== null) text = `${formatLeft(left)} left`;
  else if (pendingTimer !== null) text = `${formatLeft(pendingTimer)} from Start`;
  else if (app.connection.name === 'ended') text = 'ended';
  if (el.textContent !== text) el.textContent = text;
  el.dataset.seconds = left === null ? '' : String(Math.ceil(left));
}

/** What plays (the server's word once streaming), as a link carries it. */
function linkMusic() {
  const p = app.params ?? settings;
  return {
    preset: app.params ? (app.preset ?? undefined) : settings.preset,
    key: p.key,
    mode: p.mode,
    bpm: p.bpm,
    intensity: p.intensity,
    seed: shareSeed,
    journey: p.journey,
  };
}

/** A link's music replaces the saved settings once, when the parameter table
 * is known; what it got wrong is said, and the defaults play instead. */
function applyLink() {
  if (linkApplied) return;
  linkApplied = true;
  const { values, rejected } = readLink(location.search);
  const preset = app.presets.find((x) => x.name === values.preset);
  if (preset) {
    settings.preset = preset.name;
    for (const k of musicParams()) if (isValid(k, preset[k])) settings[k] = preset[k];
  }
  for (const k of musicParams()) if (values[k] !== undefined) settings[k] = values[k];
  if (values.seed !== undefined) shareSeed = values.seed;
  saveSettings(settings);
  const note = $('link-note');
  note.hidden = rejected.length === 0;
  note.textContent = rejected.length
    ? `This link had values Auralis does not take, so their defaults play instead: ${rejected.join('; ')}.`
    : '';
}

async function share() {
  renderListenLinks();
  const note = $('share-note');
  try {
    await navigator.clipboard.writeText(location.href);
    note.textContent = 'Link copied';
  } catch {
    note.textContent = `Copy this link: ${location.href}`;
  }
}

async function download() {
  const minutes = Number($('download-minutes').value);
  const kind = $('download-format').value;
  if (!(minutes > 0 && minutes <= MAX_DOWNLOAD_MINUTES)) {
    $('download-note').textContent = `download failed: minutes must be more than 0 and at most ${MAX_DOWNLOAD_MINUTES}`;
    return;
  }
  const q = new URL(linkFor(linkMusic())).searchParams;
  q.delete('format');
  q.set('minutes', String(minutes));
  const button = $('download');
  const bar = $('download-progress');
  const note = $('download-note');
  button.disabled = true;
  bar.hidden = false;
  bar.removeAttribute('value');
  note.textContent = 'rendering…';
  try {
    const { blob, name } = await fetchWithProgress(`/download.${kind}?${q}`, (got, total) => {
      if (total) bar.value = got / total;
      note.textContent = `${(got / 1e6).toFixed(1)} MB${total ? ` of ${(total / 1e6).toFixed(1)} MB` : ''}`;
    });
    bar.value = 1;
    saveBlob(blob, name);
    note.textContent = `saved ${name} (${(blob.size / 1e6).toFixed(1)} MB)`;
    note.dataset.bytes = String(blob.size);
  } catch (e) {
    note.textContent = `download failed: ${e.message}`;
  } finally {
    button.disabled = false;
  }
}

async function copyStreamUrl() {
  const field = $('stream-url');
  try {
    await navigator.clipboard.writeText(field.value);
  } catch {
    // Without clipboard permission, select it for the listener to copy.
    field.select();
  }
}

function renderOutputs() {
  $('bpm-value').textContent = `${$('bpm').value} BPM`;
  $('intensity-value').textContent = Number($('intensity').value).toFixed(2);
  $('volume-value').textContent = `${Math.round(Number($('volume').value) * 100)} %`;
}

function renderNowPlaying() {
  const el = $('now-playing');
  const p = app.params;
  if (!p) {
    el.textContent = '—';
    return;
  }
  const name = app.preset ? `${app.preset} · ` : '';
  el.textContent = `${name}${p.key} ${p.mode} · ${Math.round(p.bpm)} BPM · intensity ${Number(p.intensity).toFixed(2)}`;
  el.dataset.key = p.key;
  el.dataset.mode = p.mode;
  el.dataset.bpm = String(p.bpm);
  el.dataset.intensity = String(p.intensity);
  el.dataset.preset = app.preset ?? '';
  // The description is only true while the preset's own values play.
  const preset = app.presets.find((x) => x.name === app.preset);
  const unchanged = preset && musicParams().every((k) => !(k in preset) || String(preset[k]) === String(p[k]));
  $('description').textContent = unchanged ? preset.description : '';
}

/** One word for tests and styling, one phrase for people. */
function currentState() {
  if (app.contextError) return { name: 'error', text: app.contextError };
  if (background.active) {
    return background.playing
      ? { name: 'playing', text: 'playing (background-friendly)' }
      : { name: 'stopped', text: 'paused' };
  }
  const c = app.connection;
  switch (c.name) {
    case 'streaming':
      return app.playing
        ? { name: 'playing', text: 'playing' }
        : { name: 'buffering', text: 'buffering…' };
    case 'connecting':
      return { name: 'connecting', text: c.attempt > 0 ? `connecting (attempt ${c.attempt}/${c.maxAttempts})…` : 'connecting…' };
    case 'reconnecting': {
      const s = Math.max(0, (c.retryAt - performance.now()) / 1000);
      return { name: 'reconnecting', text: `reconnecting in ${s.toFixed(1)} s (attempt ${c.attempt}/${c.maxAttempts})` };
    }
    case 'failed':
      return { name: 'failed', text: `disconnected after ${c.maxAttempts} attempts — press Start to retry` };
    case 'stopped':
      return { name: 'stopped', text: 'stopped' };
    case 'ended':
      return { name: 'ended', text: 'timer ended — the music faded out' };
    default:
      return { name: 'idle', text: 'press Start' };
  }
}

function renderState() {
  const { name, text } = currentState();
  const el = $('state');
  if (el.dataset.state !== name) el.dataset.state = name;
  if (el.textContent !== text) el.textContent = text;
  $('audio-unavailable').hidden = !app.contextError;
  // Giving up ends the session: the button offers a fresh start.
  if (name === 'failed' && $('start').getAttribute('aria-pressed') === 'true') {
    setPressed(false);
  }
}

function renderHealth() {
  const w = app.worklet;
  if (!w) return;
  $('buffer-depth').textContent = `${Math.round(framesToMs(w.depthFrames))} / ${Math.round(framesToMs(w.targetFrames))} ms`;
  $('tier').textContent = `${w.tier} (${Math.round(framesToMs(w.targetFrames))} ms)`;
  $('jitter').textContent = `${w.jitterMs.toFixed(1)} ms`;
  $('underruns').textContent = String(w.underruns);
  $('latency').textContent = fmtMs(app.latencyMs);
  $('control-latency').textContent = fmtMs(app.controlLatencyMs);
  const recent = measure.underrunsLastMinute(nowMs());
  const warning = $('warning');
  const show = recent > UNDERRUN_WARNING_PER_MINUTE;
  if (show) {
    warning.textContent = `Playback is stuttering: ${recent} underruns in the last minute. The buffer grows to absorb an unsteady network.`;
  }
  warning.hidden = !show;
}

function renderMessage() {
  const el = $('message');
  el.textContent = app.serverMessage ?? '';
  el.hidden = !app.serverMessage;
}

function renderAttribution(fonts) {
  const el = $('attribution');
  if (!fonts || !fonts.piano || !fonts.pad) {
    el.textContent = 'Sounds: details unavailable';
    return;
  }
  const describe = (f) => `${f.name} — ${f.attribution} (licence: ${f.licence})`;
  const lines =
    fonts.piano.name === fonts.pad.name
      ? [`Sounds: ${describe(fonts.piano)}`]
      : [`Piano: ${describe(fonts.piano)}`, `Pad: ${describe(fonts.pad)}`];
  el.replaceChildren(
    ...lines.map((line) => {
      const p = document.createElement('div');
      p.textContent = line;
      return p;
    }),
  );
}

function renderAll() {
  renderState();
  renderHealth();
  renderNowPlaying();
  renderMessage();
}

// ---- Debug and test surface ---------------------------------------------

function stats() {
  const w = app.worklet;
  return {
    state: currentState().name,
    connection: app.connection.name,
    attempt: app.connection.attempt ?? 0,
    format,
    contextState: player ? player.ctx.state : 'none',
    sampleRate: player ? player.sampleRate : null,
    framesPlayed: w ? w.framesPlayed : 0,
    audioTime: w ? w.audioTime : 0,
    bufferMs: w ? framesToMs(w.depthFrames) : 0,
    targetMs: w ? framesToMs(w.targetFrames) : null,
    tier: w ? w.tier : null,
    jitterMs: w ? w.jitterMs : null,
    underruns: w ? w.underruns : 0,
    silentFrames: w ? w.silentFrames : 0,
    droppedFrames: w ? w.droppedFrames : 0,
    tierChanges: w ? w.tierChanges : 0,
    rate: w ? w.rate : 1,
    lastSeq: app.lastSeq,
    seqJumps: app.seqJumps,
    splices: app.splices,
    lateSplices: w ? w.lateSplices : 0,
    latencyMs: app.latencyMs,
    controlLatencyMs: app.controlLatencyMs,
    clockOffsetMs: clock.offsetMs,
    rttMs: clock.rttMs,
    params: app.params ? { preset: app.preset, ...app.params } : null,
    reconnects: app.reconnects,
    sessionId: app.sessionId,
    background: {
      active: background.active,
      playing: background.playing,
      currentTime: $('background-audio').currentTime,
    },
  };
}

function latencySummary() {
  return {
    latencyMs: [...measure.latency],
    controlLatencyMs: [...measure.controlLatency],
    latencyP50: percentile(measure.latency, 50),
    latencyP95: percentile(measure.latency, 95),
    controlP50: percentile(measure.controlLatency, 50),
    controlP95: percentile(measure.controlLatency, 95),
  };
}

Object.defineProperty(window, 'auralis', {
  value: Object.freeze({ stats, latency: latencySummary }),
  writable: false,
  configurable: false,
});

setupControls();
renderAll();
loadStatus();
