// A quiet spectrum on a canvas: log-spaced bands from 40 Hz to 16 kHz (how
// the ear hears pitch) with a thin level line beneath.

const BANDS = 48;
const LOW_HZ = 40;
const HIGH_HZ = 16000;

export class Meter {
  constructor(canvas, analyser) {
    this.canvas = canvas;
    this.g = canvas.getContext('2d');
    this.analyser = analyser;
    this.freq = new Uint8Array(analyser.frequencyBinCount);
    this.wave = new Float32Array(analyser.fftSize);
    this.levels = new Float32Array(BANDS);
    this.edges = bandEdges(analyser.context.sampleRate, analyser.fftSize);
    this.fill = null;
    this.running = false;
  }

  start() {
    if (this.running) return;
    this.running = true;
    const frame = () => {
      if (!this.running) return;
      this.draw();
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  }

  stop() {
    this.running = false;
  }

  draw() {
    const { canvas, g } = this;
    const dpr = window.devicePixelRatio || 1;
    const w = Math.round(canvas.clientWidth * dpr);
    const h = Math.round(canvas.clientHeight * dpr);
    if (w === 0 || h === 0) return;
    if (canvas.width !== w || canvas.height !== h) {
      canvas.width = w;
      canvas.height = h;
      this.fill = g.createLinearGradient(0, h, 0, 0);
      this.fill.addColorStop(0, 'rgba(94, 164, 170, 0.35)');
      this.fill.addColorStop(1, 'rgba(167, 151, 222, 0.9)');
    }
    this.analyser.getByteFrequencyData(this.freq);
    this.analyser.getFloatTimeDomainData(this.wave);

    g.clearRect(0, 0, w, h);
    const levelH = 3 * dpr;
    const barsH = h - levelH * 3;
    const gap = 2 * dpr;
    const barW = (w - gap * (BANDS - 1)) / BANDS;
    g.fillStyle = this.fill;
    for (let b = 0; b < BANDS; b++) {
      let peak = 0;
      for (let i = this.edges[b]; i < this.edges[b + 1]; i++) peak = Math.max(peak, this.freq[i]);
      // Falls slowly, rises at once: calmer to watch than raw bins.
      this.levels[b] = Math.max(peak / 255, this.levels[b] * 0.92);
      const bh = Math.max(dpr, this.levels[b] * barsH);
      g.fillRect(b * (barW + gap), barsH - bh, barW, bh);
    }

    let sum = 0;
    for (let i = 0; i < this.wave.length; i++) sum += this.wave[i] * this.wave[i];
    const rms = Math.sqrt(sum / this.wave.length);
    const db = 20 * Math.log10(rms || 1e-9);
    const level = Math.min(1, Math.max(0, (db + 60) / 60));
    g.fillStyle = 'rgba(255, 255, 255, 0.08)';
    g.fillRect(0, h - levelH, w, levelH);
    g.fillStyle = 'rgba(94, 164, 170, 0.9)';
    g.fillRect(0, h - levelH, w * level, levelH);
  }
}

/** FFT bin index where each band starts; band b covers [edges[b], edges[b+1]). */
function bandEdges(sampleRate, fftSize) {
  const binHz = sampleRate / fftSize;
  const edges = new Uint16Array(BANDS + 1);
  for (let b = 0; b <= BANDS; b++) {
    const hz = LOW_HZ * (HIGH_HZ / LOW_HZ) ** (b / BANDS);
    edges[b] = Math.round(hz / binHz);
  }
  // Low bands narrower than one bin would be empty: give each at least one.
  for (let b = 1; b <= BANDS; b++) edges[b] = Math.max(edges[b], edges[b - 1] + 1);
  return edges;
}
