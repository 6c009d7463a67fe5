/**
 * A service and everything it imports as one ES module, the production form docs/deploying.md describes
 * (the same options as its esbuild command line). Used by the benchmark's bundled scenarios and the bundled
 * example test; run it directly to bundle a service of this repository:
 *
 *   npx tsx scripts/bundle.ts examples/greeter/server.ts /tmp/greeter.mjs && node /tmp/greeter.mjs
 */
import * as esbuild from "esbuild"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")

/** Bundles the repository-relative `entry` into `outfile` (relative to the repository, or absolute). */
export const bundle = (entry: string, outfile: string): string => {
  esbuild.buildSync({
    absWorkingDir: root,
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    // CommonJS dependencies bundled into an ES module still call `require` for Node's built-ins.
    banner: {
      js:
        "import { createRequire as __bundleRequire } from \"node:module\"; const require = __bundleRequire(import.meta.url);"
    },
    logLevel: "error"
  })
  return outfile
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [entry, outfile] = process.argv.slice(2)
  if (entry === undefined || outfile === undefined) {
    console.error("usage: npx tsx scripts/bundle.ts <entry.ts> <outfile.mjs>")
    process.exit(2)
  }
  console.log(bundle(entry, outfile))
}
