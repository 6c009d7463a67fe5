/**
 * Where a project file's JavaScript is in the run's transpiled copy (test/support/globalSetup.ts): child
 * processes start from it with plain node instead of `--import tsx`.
 */
import * as path from "node:path"
import { inject } from "vitest"

const root = path.resolve(import.meta.dirname, "../..")

/** `test/process/fixtures/x.ts` (relative to the project, or absolute) → its transpiled `.js`. */
export const transpiled = (file: string): string =>
  path.join(inject("transpiled"), path.relative(root, path.resolve(root, file)).replace(/\.ts$/, ".js"))
