/** The contracts of the auth example: the auth service (issues tokens) and a protected billing service. */
import * as Rpc from "@effect/rpc/Rpc"
import * as RpcGroup from "@effect/rpc/RpcGroup"
import { Auth, Errors } from "effect-micro"
import * as Schema from "effect/Schema"

/** The auth service: log in with credentials or renew with a refresh token. */
export const Issuer = RpcGroup.make(
  Rpc.make("Token", { payload: Auth.TokenRequest, success: Auth.Token, error: Errors.Unauthorized })
)

export const Billing = RpcGroup.make(
  Rpc.make("Balance", {
    payload: { customer: Schema.String },
    success: Schema.Struct({ amount: Schema.Number, account: Schema.String, peer: Schema.String })
  }),
  Rpc.make("Refund", { payload: { customer: Schema.String, amount: Schema.Number }, success: Schema.String })
)
