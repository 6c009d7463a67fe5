/** Template: `package.json`, with the versions effect-micro itself was built and tested with. */
import type { Names } from "./names.js"

/** The versions a generated project depends on (see `versions` in project.ts). */
export interface Versions {
  /** effect-micro's own version; the project depends on `^<version>`. */
  readonly effectMicro: string
  readonly dependencies: Readonly<Record<string, string>>
  readonly devDependencies: Readonly<Record<string, string>>
  /** effect-micro's `engines.node`, when it has one. */
  readonly node: string | undefined
}

const sorted = (record: Readonly<Record<string, string>>) =>
  Object.fromEntries(Object.entries(record).sort(([a], [b]) => a.localeCompare(b)))

export const packageJson = ({ service }: Names, versions: Versions): string =>
  JSON.stringify(
    {
      name: service,
      version: "0.1.0",
      private: true,
      type: "module",
      ...(versions.node === undefined ? {} : { engines: { node: versions.node } }),
      scripts: {
        start: "tsx src/demo.ts",
        server: "tsx src/server.ts",
        client: "tsx src/client.ts",
        test: "vitest run",
        typecheck: "tsc --noEmit"
      },
      dependencies: sorted({ "effect-micro": `^${versions.effectMicro}`, ...versions.dependencies }),
      devDependencies: sorted(versions.devDependencies)
    },
    null,
    2
  ) + "\n"
