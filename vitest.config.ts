import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

const src = fileURLToPath(new URL("./src/", import.meta.url))

export default defineConfig({
  // `effect-micro` imports (examples, recipes) resolve to the sources, as tsconfig's `paths` do, not to a build.
  resolve: {
    alias: [
      { find: /^effect-micro$/, replacement: `${src}index.ts` },
      { find: /^effect-micro\/(.*)$/, replacement: `${src}$1.ts` }
    ]
  },
  test: {
    include: ["test/**/*.test.ts"],
    // Child processes run a transpiled copy of the project with plain node (see the file).
    globalSetup: ["test/support/globalSetup.ts"],
    // Cross-process and engine suites spawn real processes; keep the machine (2 cores) from thrashing.
    maxWorkers: 2,
    minWorkers: 1,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    sequence: { concurrent: false }
  }
})
