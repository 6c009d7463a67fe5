/**
 * Exit codes and the JSON the CLI prints on stderr when a command fails. Scripts branch on the exit code;
 * the JSON has go-micro's error fields (`id`, `code`, `detail`, `status`) plus `_tag` for every failure, so
 * one parser handles them all.
 */
import * as Data from "effect/Data"
import { BrokerError } from "../Broker.js"
import { DynamicConfigError } from "../DynamicConfig.js"
import * as Errors from "../Errors.js"
import { RegistryError } from "../Registry.js"
import { StoreError, type StoreErrorReason } from "../Store.js"

/** The process exit codes (docs/cli.md). 64 is `EX_USAGE` from sysexits.h. */
export const ExitCode = {
  success: 0,
  endpointError: 1,
  frameworkError: 2,
  notFound: 3,
  usage: 64
} as const
export type ExitCode = typeof ExitCode[keyof typeof ExitCode]

/** Bad input from the command line or stdin (not JSON, bad duration, unknown registry ...). */
export class UsageError extends Data.TaggedError("UsageError")<{ readonly detail: string }> {}

/** The service answered with its endpoint's typed error; `value` is that error's JSON. */
export class EndpointError extends Data.TaggedError("EndpointError")<{ readonly value: unknown }> {}

/** At least one node did not answer `serving` (`health`); the table is already printed. */
export class Unhealthy extends Data.TaggedError("Unhealthy")<{ readonly nodes: number }> {}

const cliId = "effect-micro.cli"

const storeStatus: Record<StoreErrorReason, number> = {
  NotFound: 404,
  Invalid: 400,
  TooLarge: 413,
  Unsupported: 501,
  Codec: 422,
  Unavailable: 503
}

/** The exit code and the stderr JSON of a failure. */
export const classify = (error: unknown): { readonly code: ExitCode; readonly json: unknown } => {
  if (Errors.isMicroError(error)) {
    const { _tag, code, detail, id, status, ...target } = error
    return {
      code: code === 404 ? ExitCode.notFound : ExitCode.frameworkError,
      json: { _tag, id, code, detail, status, ...target }
    }
  }
  if (error instanceof EndpointError) return { code: ExitCode.endpointError, json: error.value }
  if (error instanceof UsageError) {
    return {
      code: ExitCode.usage,
      json: { _tag: "UsageError", id: cliId, code: 400, detail: error.detail, status: "Bad Usage" }
    }
  }
  if (error instanceof RegistryError) {
    return {
      code: ExitCode.frameworkError,
      json: { _tag: "RegistryError", id: cliId, code: 503, detail: error.message, status: error.reason }
    }
  }
  if (error instanceof BrokerError) {
    return {
      code: ExitCode.frameworkError,
      json: {
        _tag: "BrokerError",
        id: cliId,
        code: 502,
        detail: error.message,
        status: error.reason,
        failures: error.failures
      }
    }
  }
  if (error instanceof StoreError) {
    return {
      code: error.reason === "NotFound" ? ExitCode.notFound : ExitCode.frameworkError,
      json: {
        _tag: "StoreError",
        id: cliId,
        code: storeStatus[error.reason],
        detail: error.detail,
        status: error.reason,
        ...(error.key === undefined ? {} : { key: error.key })
      }
    }
  }
  if (error instanceof DynamicConfigError) {
    return {
      code: error.reason === "Missing" ? ExitCode.notFound : ExitCode.frameworkError,
      json: {
        _tag: "DynamicConfigError",
        id: cliId,
        code: error.reason === "Missing" ? 404 : error.reason === "Unavailable" ? 503 : 422,
        detail: error.message,
        status: error.reason
      }
    }
  }
  if (error instanceof Unhealthy) {
    return {
      code: ExitCode.frameworkError,
      json: {
        _tag: "Unhealthy",
        id: cliId,
        code: 503,
        detail: `${error.nodes} node(s) not serving`,
        status: "Unhealthy"
      }
    }
  }
  return {
    code: ExitCode.frameworkError,
    json: { _tag: "InternalError", id: cliId, code: 500, detail: String(error), status: "Internal Error" }
  }
}
