/** Templates: `tsconfig.json` and `.gitignore`. */

export const tsconfig = (): string =>
  JSON.stringify(
    {
      compilerOptions: {
        target: "ES2022",
        module: "NodeNext",
        moduleResolution: "NodeNext",
        lib: ["ES2022"],
        types: ["node"],
        strict: true,
        exactOptionalPropertyTypes: true,
        noUnusedLocals: true,
        noFallthroughCasesInSwitch: true,
        isolatedModules: true,
        skipLibCheck: true,
        // tsx runs the sources and vitest the tests: nothing is compiled to disk.
        noEmit: true
      },
      include: ["src", "test"]
    },
    null,
    2
  ) + "\n"

export const gitignore = (): string =>
  `node_modules
dist
# the embedded store's default location (Defaults' Store)
.micro/
`
