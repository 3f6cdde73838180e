#!/usr/bin/env bash
# Installs every Debian package dicom-gw needs to build, run and test.
# Idempotent: packages already present are skipped. Needs root (or sudo).
set -euo pipefail

BUILD_PKGS=(
  build-essential cmake ninja-build pkg-config git
  libasio-dev libssl-dev libdcmtk-dev libyaml-cpp-dev nlohmann-json3-dev
  libspdlog-dev libfmt-dev libcli11-dev libsqlite3-dev libsodium-dev libcpp-httplib-dev
  libxxhash-dev libpq-dev zlib1g-dev
  libgtest-dev libgmock-dev libbenchmark-dev
)
# Real peers and tools the tests and the demo use.
TEST_PKGS=(
  dcmtk openssl sqlite3 clang libclang-rt-14-dev procps util-linux orthanc curl
  postgresql postgresql-contrib
  rsyslog rsyslog-gnutls libxml2-utils
  systemd
)

want=("${BUILD_PKGS[@]}")
if [ "${1:-}" = "--test" ]; then want+=("${TEST_PKGS[@]}"); fi
if [ "${1:-}" = "--run" ]; then want+=(dcmtk openssl); fi
if [ "${1:-}" = "--bench" ]; then want+=(dcmtk orthanc python3 procps util-linux); fi  # bench/ingest

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#want[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# The audit.syslog tests run their own rsyslogd (own config, port, pid file); the package would
# also start the system's syslog daemon where init allows it. Keep it from starting during this
# install with a policy-rc.d of our own, only when the machine has none (containers usually do).
policy=/usr/sbin/policy-rc.d
own_policy=""
if [[ " ${missing[*]} " == *" rsyslog "* ]] && [ ! -e "$policy" ]; then
  printf '#!/bin/sh\ncase "$1" in rsyslog|rsyslog.service|syslog.socket) exit 101;; esac\nexit 0\n' |
    $SUDO tee "$policy" >/dev/null
  $SUDO chmod 755 "$policy"
  own_policy=1
  trap 'if [ -n "$own_policy" ]; then $SUDO rm -f "$policy"; fi' EXIT
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
