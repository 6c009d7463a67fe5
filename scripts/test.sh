#!/usr/bin/env bash
# The whole test suite: installs dependencies and the engine packages (etcd, nats, redis, postgres) when
# missing, typechecks, then runs vitest. Engines are started and stopped by the tests themselves.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
bash scripts/engines.sh install
npm run typecheck
npx vitest run "$@"
