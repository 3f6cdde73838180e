#!/usr/bin/env bash
# The run command: installs what the gateway needs (Debian packages), builds it, and starts a
# demo gateway (`dicom-gw demo`): config, data directory and SQLite index under ./demo.
#   DEMO_DIR=/path DEMO_PORT=11112 scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --run
cmake --preset default >/dev/null
cmake --build --preset default --target dicom-gw
exec ./build/src/dicom-gw demo --dir "${DEMO_DIR:-demo}" --port "${DEMO_PORT:-11112}"
