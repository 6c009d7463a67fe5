#!/usr/bin/env bash
# The demo system: several services in separate processes discover each other over multicast DNS
# (loopback only) and talk. See examples/demo/README.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec npx tsx examples/demo/main.ts "$@"
