#!/usr/bin/env bash
# Builds and runs the server on a fresh Debian machine: installs the one
# system library the build needs (libopus, for /listen.opus), then
# `cargo run --release -- serve` with any arguments given here.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --build
exec cargo run --release -- serve "$@"
