/**
 * The example's program, shared by main.ts (runs until Ctrl-C) and demo.ts (edits the file itself).
 */
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as DynamicConfig from "../../src/DynamicConfig.js"
import * as EtcdConfigSource from "../../src/plugins/etcd/EtcdConfigSource.js"

export const Greeting = Schema.Struct({
  message: Schema.String,
  repeat: Schema.Number.pipe(Schema.int(), Schema.between(1, 5))
})

/** Defaults < file < etcd (when ETCD_ADDRESS is set) < APP_* env vars < --flags. */
export const ConfigLive = (file: string, args: ReadonlyArray<string>) => {
  const sources: Array<DynamicConfig.Source> = [
    DynamicConfig.memory({ greeting: { message: "Hello", repeat: 1 }, server: { host: "0.0.0.0", port: 80 } }),
    DynamicConfig.file(file)
  ]
  if (process.env.ETCD_ADDRESS !== undefined) {
    sources.push(EtcdConfigSource.make({ hosts: process.env.ETCD_ADDRESS, prefix: "/config/example/", optional: true }))
  }
  sources.push(DynamicConfig.env({ prefix: "APP" }), DynamicConfig.argv({ args }))
  // The bridge: Effect's own `Config` reads the same merged, live tree.
  return DynamicConfig.layerConfigProvider.pipe(Layer.provideMerge(DynamicConfig.layer(sources)))
}

/** Prints the greeting each time it changes, and every reload error; never returns. */
export const program = Effect.gen(function*() {
  const config = yield* DynamicConfig.DynamicConfig
  // Plain Effect Config, served by the bridge (nested or dotted names both work).
  const host = yield* Config.string("server.host")
  const port = yield* Config.nested("server")(Config.integer("port"))
  yield* Effect.log(`server would listen on ${host}:${port}`)

  const errors = config.errors.pipe(
    Stream.runForEach((error) => Effect.log(`kept the last good config: ${error.reason} ${error.path} ${error.detail}`))
  )
  const greetings = config.watch("greeting", Greeting).pipe(
    Stream.runForEach(({ message, repeat }) => Effect.log(`greeting -> ${Array(repeat).fill(message).join(" / ")}`))
  )
  yield* Effect.all([errors, greetings], { concurrency: "unbounded", discard: true })
})
