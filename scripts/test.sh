#!/usr/bin/env bash
# The whole test suite: installs dependencies and the engine packages (etcd, nats, redis, postgres, and chromium
# for the browser test) when missing, typechecks and lints (sources and the docs' code blocks), checks the packed
# package, then runs vitest.
# Engines are started and stopped by the tests themselves.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
bash scripts/engines.sh install
# Debian's Chromium for the dashboard's browser test (test/process/dashboard.test.ts); not a default engine.
bash scripts/engines.sh install chromium
npm run typecheck
npm run lint
if [ "$#" -eq 0 ]; then
  # Every TypeScript block of README.md and docs/ against the sources.
  npx tsx scripts/check-docs.ts
  # docs/options.md (the options reference, generated from the doc comments) must match the sources.
  npx tsx scripts/options-reference.ts --check
  # The API reference (api/) from the doc comments; docgen also typechecks their @examples. It is committed,
  # so a stale copy fails here.
  npm run docs
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1 && ! git diff --quiet -- api; then
    git --no-pager diff --stat -- api
    echo "api/ is stale: run npm run docs and commit it"
    exit 1
  fi
  # The package as users install it (build, pack, install next to another effect patch, import, typecheck).
  bash scripts/pack-check.sh
fi
if [ "$#" -gt 0 ]; then
  npx vitest run "$@"
else
  # The chaos suite asserts throughput figures: it runs on its own, after everything else, so no other test
  # file shares the two cores with it.
  npx vitest run --exclude "test/chaos/**"
  npx vitest run test/chaos
fi
