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
cargo test --test sound -- --ignored
cargo test --test icecast -- --ignored
cargo test --features fluidsynth --test fluidsynth -- --include-ignored
cargo test --features fluidsynth --test voices -- --include-ignored
# Both engines on FluidR3_GM too.
cargo test --features fluidsynth --test continuity -- --include-ignored
cargo build --release --features fluidsynth --bin auralis
# Where synthesis stands (printed, not asserted): ms per 32 s phrase for each
# engine on FluidR3_GM and the ratio to libfluidsynth, in a few seconds.
target/release/auralis bench --compare --phrases 3
if [ -f e2e/package.json ]; then
  (cd e2e && AURALIS_BIN=../target/release/auralis node run.mjs)
  # The smoke subset in Firefox (twice) and WebKit: about 40 s.
  (cd e2e && AURALIS_BIN=../target/release/auralis node engines.mjs)
fi
