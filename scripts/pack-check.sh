#!/usr/bin/env bash
# The package as a user gets it: build, `npm pack`, install the tarball into a fresh ESM project next to a
# *different* compatible patch of effect (peer dependencies, so there must be exactly one copy), import every
# public entry point from plain Node, and typecheck a sample service with `moduleResolution: nodenext`.
# Also checks that nothing under `internal/` can be imported, and that a project made by `micro new` installs,
# typechecks, passes its tests and runs its demo. Needs the npm registry.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

rm -rf dist
npx tsc -p tsconfig.build.json
tarball=$(npm pack --silent --pack-destination "$work" | tail -1)

# The peers the package declares, at a patch other than the one this repo tests with.
effect_other=$(node -e '
  const have = require("./node_modules/effect/package.json").version
  const [major, minor, patch] = have.split(".").map(Number)
  const range = require("./package.json").peerDependencies.effect
  const low = Number(range.replace(/^\^/, "").split(".")[2])
  console.log(`${major}.${minor}.${patch > low ? patch - 1 : patch + 1}`)')
peer() { node -p "require('./node_modules/$1/package.json').version"; }

mkdir "$work/app"
cd "$work/app"
cat > package.json <<EOF
{ "name": "pack-check", "private": true, "type": "module" }
EOF
# --ignore-scripts: better-sqlite3 would build from source here (a minute); importing it never loads the addon.
optional=$(cd "$root" && node -p 'Object.keys(require("./package.json").peerDependenciesMeta).map((name) => `${name}@${require(`./node_modules/${name}/package.json`).version}`).join(" ")')
# shellcheck disable=SC2086 # $optional is a list of package@version words
npm install --silent --no-audit --no-fund --ignore-scripts \
  "$work/$tarball" $optional \
  "effect@$effect_other" \
  "@effect/platform@$(cd "$root" && peer @effect/platform)" \
  "@effect/platform-node@$(cd "$root" && peer @effect/platform-node)" \
  "@effect/rpc@$(cd "$root" && peer @effect/rpc)" \
  "typescript@$(cd "$root" && peer typescript)" \
  "@types/node@$(cd "$root" && peer @types/node)"

installed=$(node -p 'require("effect/package.json").version')
[ "$installed" = "$effect_other" ] || { echo "expected effect $effect_other, got $installed"; exit 1; }
copies=$(find node_modules -path '*/effect/package.json' -not -path '*/effect/*/effect/package.json' | wc -l)
[ "$copies" = "1" ] || { echo "effect is installed $copies times:"; find node_modules -path '*/effect/package.json'; exit 1; }

# Every public entry point loads from plain ESM (plugins with their optional peers installed); internal
# modules are not reachable.
node --input-type=module -e '
  import { execFileSync } from "node:child_process"
  import { readFileSync } from "node:fs"
  const { exports } = JSON.parse(readFileSync("node_modules/effect-micro/package.json", "utf8"))
  const entries = Object.keys(exports).filter((key) => key !== "./package.json")
  // Each entry in a fresh process: an import cycle between a public module and the internals it uses
  // only breaks when that module is the first one loaded.
  for (const key of entries) {
    const specifier = key === "." ? "effect-micro" : `effect-micro/${key.slice(2)}`
    const probe = `const m = await import("${specifier}"); if (Object.keys(m).length === 0) throw new Error("${specifier} exports nothing")`
    execFileSync(process.execPath, ["--input-type=module", "-e", probe], { stdio: "inherit" })
  }
  for (const hidden of ["effect-micro/internal/wire", "effect-micro/internal/wire.js", "effect-micro/dist/Client.js"]) {
    try {
      await import(hidden)
      throw new Error(`${hidden} is importable`)
    } catch (error) {
      if (error.code !== "ERR_PACKAGE_PATH_NOT_EXPORTED") throw error
    }
  }
  console.log(`pack-check: ${entries.length} entry points import; internal modules are not exported`)'

# The `micro` bin runs from the installed package (its optional peers, @effect/cli and the printers, are
# installed above with the others).
help=$(npx --no -- micro --help)
case "$help" in *"- services"*) ;; *) echo "micro --help lists no commands: $help"; exit 1 ;; esac
have=$(npx --no -- micro --version)
want=$(node -p 'require("./node_modules/effect-micro/package.json").version')
[ "$have" = "$want" ] || { echo "micro --version printed '$have', expected '$want'"; exit 1; }
echo "pack-check: npx micro --help runs from the tarball"

# A user's service, typechecked against the published types.
cat > tsconfig.json <<'EOF'
{
  "compilerOptions": {
    "target": "ES2022",
    "module": "NodeNext",
    "moduleResolution": "NodeNext",
    "strict": true,
    "exactOptionalPropertyTypes": true,
    "skipLibCheck": false,
    "noEmit": true,
    "types": ["node"]
  },
  "files": ["service.ts"]
}
EOF
cp "$root/scripts/pack-check-sample.ts" service.ts
npx tsc -p tsconfig.json
echo "pack-check: the sample typechecks (effect $installed, moduleResolution nodenext)"

# `micro new` from the installed tarball: the generated project, with effect-micro pointed at this tarball and
# the rest from the registry (the npm cache first), must typecheck, pass its tests and run its demo.
# --ignore-scripts: better-sqlite3's install would fetch a prebuilt addon from GitHub or build one (headers
# from nodejs.org), i.e. leave the registry; the demo and the tests never open the embedded store, so never
# load the addon.
started=$SECONDS
mkdir "$work/new"
cd "$work/new"
"$work/app/node_modules/.bin/micro" new demo-svc >/dev/null
cd demo-svc
node -e '
  const fs = require("node:fs")
  const pkg = JSON.parse(fs.readFileSync("package.json", "utf8"))
  pkg.dependencies["effect-micro"] = `file:${process.argv[1]}`
  fs.writeFileSync("package.json", JSON.stringify(pkg, null, 2) + "\n")' "$work/$tarball"
npm install --silent --no-audit --no-fund --prefer-offline --ignore-scripts
got=$(node -p 'require("effect-micro/package.json").version')
[ "$got" = "$want" ] || { echo "the generated project has effect-micro $got, expected this build ($want)"; exit 1; }
timeout -k 10 300 npx tsc --noEmit
timeout -k 10 300 npm test --silent
# Into a file, not $(...): a server left running by a failed demo would hold a pipe open (and the check with it).
timeout -k 10 120 npm start --silent >"$work/demo.log" 2>&1 || { echo "npm start failed:"; cat "$work/demo.log"; exit 1; }
grep -q "Countdown → 3 2 1 0" "$work/demo.log" || { echo "npm start did not run the client:"; cat "$work/demo.log"; exit 1; }
echo "pack-check: micro new demo-svc installs, typechecks, passes its tests and runs its demo ($((SECONDS - started)) s)"
