/**
 * Call gRPC services (effect-micro's `GrpcServer`, or any gRPC server in any language) through
 * `Client.make(contract, …)`: the same typed methods, registry, selector, retries, deadlines and
 * metadata. A node is called over gRPC when its registry metadata says `protocol: "grpc"`; its
 * `grpc.service` metadata names the `.proto` service (`package.Service`), and the contract's endpoints are
 * its methods (`Protobuf.toProto` names them). Other nodes keep the native protocol, so one client reaches
 * both.
 *
 * ```ts
 * // A gRPC service that is not effect-micro, described by a static node:
 * const registry = Registry.layerMemory // register { name: "greeter", nodes: [{ id: "g1", address: "10.0.0.5:50051",
 * //   metadata: { protocol: "grpc", "grpc.service": "helloworld.Greeter" } }] }
 * const program = Effect.gen(function*() {
 *   const greeter = yield* Client.make(Greeter, { service: "greeter" })
 *   return yield* greeter.SayHello({ name: "Ada" })
 * }).pipe(Effect.provide(GrpcClient.layer()), ...)
 * ```
 *
 * gRPC carries protobuf: `layer` makes `application/protobuf` the client's default content-type (calls
 * with another content-type to a gRPC node fail with `BadRequest`). Status codes, the typed errors of
 * `grpc-status-details-bin`, metadata and deadlines are mapped as docs/grpc.md says.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as http2 from "node:http2"
import * as Client from "../../Client.js"
import type { Codecs } from "../../Codec.js"
import { TransportError } from "../../Errors.js"
import type { ProtocolDialer } from "../../internal/rpc/protocols.js"
import { ProtocolDialers } from "../../internal/rpc/protocols.js"
import * as Protobuf from "../../Protobuf.js"
import type { Registry } from "../../Registry.js"
import type { Selector } from "../../Selector.js"
import type { Transport } from "../../Transport.js"
import { GrpcConnection } from "./internal/connection.js"
import { PROTOCOL as protocol, SERVICE_METADATA_KEY as serviceMetadataKey } from "./internal/nodeMetadata.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface GrpcClientOptions {
  /**
   * TLS: connect over `https` with these options (`ca`, `cert` and `key` for mTLS, `servername` …).
   * Default: plaintext HTTP/2 (h2c), what `grpc.credentials.createInsecure()` speaks.
   */
  readonly tls?: http2.SecureClientSessionOptions | undefined
  /** `node:http2` session options (settings, `maxSessionMemory` …). Default: Node's. */
  readonly sessionOptions?: http2.ClientSessionOptions | undefined
}

/** The dialer of `grpc` nodes: one HTTP/2 session per node address, pooled by the client runtime. */
const dialer = (options?: GrpcClientOptions): ProtocolDialer => (node, context) =>
  Effect.suspend(() => {
    const service = node.metadata[serviceMetadataKey]
    if (service === undefined || service === "") {
      return Effect.fail(TransportError.of(
        "dial",
        node.address,
        `gRPC node ${node.id} has no "${serviceMetadataKey}" metadata naming its service (package.Service)`
      ))
    }
    return Effect.try({
      try: () =>
        new GrpcConnection(
          node.address,
          service,
          context.maxFrameSize,
          context.deadlines,
          { ...options?.sessionOptions, ...options?.tls },
          options?.tls !== undefined,
          context.onGone
        ),
      catch: (error) => TransportError.of("dial", node.address, `cannot open an HTTP/2 session: ${String(error)}`)
    })
  })

/**
 * A `Client` runtime that calls `grpc` nodes over gRPC and others natively, with protobuf as its default
 * content-type. Options are `Client.layer`'s plus the HTTP/2 session's.
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options?: Client.ClientLayerOptions & GrpcClientOptions
): Layer.Layer<Client.Client, never, Registry | Selector | Transport | Codecs> =>
  Client.layer({ contentType: Protobuf.contentType, ...options }).pipe(
    Layer.provide(Layer.effect(
      ProtocolDialers,
      Effect.map(ProtocolDialers, (dialers) => new Map([...dialers, [protocol, dialer(options)]]))
    ))
  )
