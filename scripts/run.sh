#!/usr/bin/env bash
# Sets up, builds txcoord (release) and runs it from the repository root with its defaults:
# 127.0.0.1:8080 and the decision log in ./var/txc. Extra arguments go to txcoord, e.g.
#   scripts/run.sh --config examples/txc.yaml
# TXC_LISTEN, TXC_LOG_DIR and the other TXC_* overrides pass through the environment.
set -euo pipefail

readonly PROG="run.sh"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT

"$ROOT/scripts/setup.sh"
"$ROOT/scripts/build.sh" release txcoord

cd "$ROOT"
readonly BINARY="build/coordinator/txcoord"
if [[ ! -x "$BINARY" ]]; then
  printf '%s: error: %s was not built\n' "$PROG" "$BINARY" >&2
  exit 1
fi
mkdir -p var/txc
printf '%s: starting %s %s\n' "$PROG" "$BINARY" "$*" >&2
exec "$BINARY" "$@"
