#!/usr/bin/env bash
# Installs what Auralis needs beyond Rust, from Debian's packages and npm,
# never a downloaded browser. Runs as root or through sudo; does nothing that
# is already done.
#
#   scripts/install-deps.sh --build   what building the server needs (libopus, libmp3lame)
#   scripts/install-deps.sh           that, plus what the test suite needs:
#                                     Chromium, Firefox ESR, WebKitGTK's
#                                     driver, Xvfb, PulseAudio and the npm
#                                     drivers for the browser tests, ffmpeg,
#                                     the fluidsynth
#                                     command, libfluidsynth-dev and the
#                                     FluidR3_GM font
set -euo pipefail
cd "$(dirname "$0")/.."
build_only=false
[ "${1:-}" = "--build" ] && build_only=true

need=()
# /listen.opus links Debian's libopus through pkg-config.
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
pkg-config --exists opus 2>/dev/null || need+=(libopus-dev)
# /listen.mp3 links Debian's libmp3lame (LGPL, as a shared library).
[ -e /usr/include/lame/lame.h ] || need+=(libmp3lame-dev)
if ! $build_only; then
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  # e2e/engines.mjs: the player in Firefox (over WebDriver BiDi) and in
  # WebKitGTK's MiniBrowser (WebKitWebDriver on a virtual X display, its
  # audio through GStreamer).
  command -v firefox-esr >/dev/null 2>&1 || need+=(firefox-esr)
  # A private PulseAudio null sink gives Firefox an output device here.
  command -v pulseaudio >/dev/null 2>&1 || need+=(pulseaudio)
  command -v WebKitWebDriver >/dev/null 2>&1 || need+=(webkit2gtk-driver gstreamer1.0-plugins-base gstreamer1.0-plugins-good)
  command -v xvfb-run >/dev/null 2>&1 || need+=(xvfb xauth)
  # tests/salamander.rs encodes its Ogg Vorbis fixtures with ffmpeg;
  # tests/listen.rs decodes the Opus and WAV streams with it.
  command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
  # tests/icecast.rs runs an Icecast origin and relay and pushes a room to them.
  command -v icecast2 >/dev/null 2>&1 || need+=(icecast2)
  # The SF2 writer's tests also check that the fluidsynth command loads our fonts.
  command -v fluidsynth >/dev/null 2>&1 || need+=(fluidsynth)
  # FluidR3_GM: tests/fluidsynth.rs compares the engines on it.
  [ -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || need+=(fluid-soundfont-gm)
  # libfluidsynth for the `fluidsynth` cargo feature (its tests and benches).
  if [ ! -f /usr/include/fluidsynth.h ] ||
    { command -v pkg-config >/dev/null 2>&1 && ! pkg-config --exists fluidsynth; }; then
    need+=(libfluidsynth-dev)
  fi
  # tests/continuity.rs plays every preset on FluidR3_GM, the brief's font.
  [ -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || need+=(fluid-soundfont-gm)
fi
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "install-deps: installing ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

e2e_modules_missing() {
  for m in playwright-core puppeteer-core selenium-webdriver; do
    [ -d "e2e/node_modules/$m" ] || return 0
  done
  return 1
}
if ! $build_only && [ -f e2e/package.json ] && e2e_modules_missing; then
  (cd e2e && npm ci --no-audit --no-fund --loglevel=error)
fi
