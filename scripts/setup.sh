#!/usr/bin/env bash
# Installs npm dependencies when they are missing or older than package-lock.json. Sourced by demo.sh/test.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "» npm ci (first run installs dependencies; better-sqlite3 builds from source, about a minute)"
  npm ci --no-audit --no-fund
fi
