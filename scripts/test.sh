#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, unit and
# integration tests against a real server, and the browser tests in headless
# Chromium. Installs what it needs first (scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
cargo clippy --all-targets --features fluidsynth -- -D warnings
cargo test --all-targets
# The #[ignore]d tests that need a tool installed above (node, ffmpeg, the
# fluidsynth command, FluidR3_GM); the Salamander ones that need the real
# samples or an installed font stay for a run by hand.
cargo test --test wire -- --ignored
cargo test --test salamander -- --ignored --skip real_samples --skip the_installed_font
cargo test --features fluidsynth --test fluidsynth -- --include-ignored
if [ -f e2e/package.json ]; then
  cargo build --release --bin auralis
  (cd e2e && AURALIS_BIN=../target/release/auralis node run.mjs)
fi
