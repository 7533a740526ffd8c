#!/usr/bin/env bash
# Configures (the first time) and builds txc with CMake and Ninja. Incremental when run again.
#
#   scripts/build.sh [release|asan|tsan] [TARGET...]
#     release  build/       RelWithDebInfo, everything (or the TARGETs given)
#     asan     build-asan/  TXC_SANITIZE=address (ASan + UBSan), target unit_tests
#     tsan     build-tsan/  TXC_SANITIZE=thread, target unit_tests
#
# Environment: TXC_JOBS (default: nproc), TXC_BUILD_TYPE (default: RelWithDebInfo).
set -euo pipefail

readonly PROG="build.sh"

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT

mode="${1:-release}"
(($# > 0)) && shift
targets=("$@")
case "$mode" in
  release)
    build_dir="$ROOT/build"
    sanitize=""
    options=()
    ;;
  asan | tsan)
    build_dir="$ROOT/build-$mode"
    if [[ "$mode" == asan ]]; then sanitize=address; else sanitize=thread; fi
    # Only the unit tests run under the sanitizers: nothing else needs configuring.
    options=(-DTXC_BUILD_BENCH=OFF)
    ((${#targets[@]} > 0)) || targets=(unit_tests)
    ;;
  -h | --help)
    sed -n '2,9s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
    exit 0
    ;;
  *) die "unknown mode '$mode' (release, asan or tsan)" ;;
esac
readonly build_type="${TXC_BUILD_TYPE:-RelWithDebInfo}"
readonly jobs="${TXC_JOBS:-$(nproc)}"

for tool in cmake ninja; do
  command -v "$tool" >/dev/null || die "$tool not found: run scripts/setup.sh"
done

# Configure unless the build directory is already configured the same way; after that, ninja
# re-runs CMake by itself whenever a CMakeLists.txt changes.
cache="$build_dir/CMakeCache.txt"
cached() { sed -n "s/^$1:[A-Z]*=//p" "$cache" 2>/dev/null; }
if [[ -f "$build_dir/build.ninja" ]] && [[ "$(cached CMAKE_GENERATOR)" == Ninja ]] &&
  [[ "$(cached CMAKE_BUILD_TYPE)" == "$build_type" ]] &&
  [[ "$(cached TXC_SANITIZE)" == "$sanitize" ]]; then
  :
else
  if [[ -f "$cache" && "$(cached CMAKE_GENERATOR)" != Ninja ]]; then
    die "$build_dir was configured with '$(cached CMAKE_GENERATOR)', not Ninja: remove it"
  fi
  log "configuring $build_dir ($mode, $build_type)"
  cmake -S "$ROOT" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="$build_type" \
    -DTXC_SANITIZE="$sanitize" "${options[@]}"
fi

started_at=$SECONDS
log "building $mode in $build_dir (${targets[*]:-all targets}, $jobs jobs)"
cmake --build "$build_dir" --parallel "$jobs" ${targets[@]:+--target "${targets[@]}"}
log "built $mode in $((SECONDS - started_at))s"
