/**
 * The node metadata of gRPC nodes, shared by `GrpcServer` (which registers it) and `GrpcClient` (which reads
 * it) without the client loading the server's grpc-js.
 *
 * @internal
 */

/** The `protocol` of gRPC nodes. */
export const PROTOCOL = "grpc"

/** The key holding the full gRPC service name (`package.Service`). */
export const SERVICE_METADATA_KEY = "grpc.service"
