#!/usr/bin/env bash
# Installs what building and testing txc needs, from Debian 12's packages. Idempotent: when
# everything is installed it only asks dpkg and returns within a second or two.
# Runs as root (CI) or through sudo.
set -euo pipefail

readonly PROG="setup.sh"

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

readonly PACKAGES=(
  # build tools
  cmake ninja-build g++ pkg-config git
  # libraries (headers and CMake/pkg-config files)
  libpoco-dev libpqxx-dev libmysqlcppconn-dev prometheus-cpp-dev libyaml-cpp-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  # throwaway test servers (scripts/dbs.sh) and their clients
  postgresql mariadb-server mariadb-client
  # promtool, to check metrics output and alert rules
  prometheus
  # headless browser and its WebDriver, for the operator page's browser test
  chromium chromium-driver
  # what the scripts call: ps (procps), setpriv/runuser (util-linux), curl
  procps util-linux curl ca-certificates
)

# Prints the packages of PACKAGES that are not installed.
missing_packages() {
  local status
  status="$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${PACKAGES[@]}" 2>/dev/null ||
    true)"
  local package
  for package in "${PACKAGES[@]}"; do
    if ! grep -qx "$package installed" <<<"$status"; then echo "$package"; fi
  done
}

command -v dpkg-query >/dev/null || die "dpkg-query not found: this script needs Debian 12"

mapfile -t missing < <(missing_packages)
if ((${#missing[@]} == 0)); then
  log "all ${#PACKAGES[@]} packages are installed"
  exit 0
fi

log "installing ${#missing[@]} missing package(s): ${missing[*]}"
if ((EUID == 0)); then
  as_root=()
elif command -v sudo >/dev/null; then
  as_root=(sudo)
else
  die "not root and no sudo: install as root: apt-get install ${missing[*]}"
fi

export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q \
  --no-install-recommends "${missing[@]}"

mapfile -t still_missing < <(missing_packages)
((${#still_missing[@]} == 0)) || die "still not installed: ${still_missing[*]}"
log "installed: ${missing[*]}"
