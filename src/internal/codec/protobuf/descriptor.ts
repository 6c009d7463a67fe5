/**
 * A contract plan as a serialized `google.protobuf.FileDescriptorProto`: what `protoc` would produce for
 * the `.proto` that `emit` prints from the same plan (no protoc at run time). gRPC server reflection
 * hands it to tools (grpcurl, Postman, grpc_cli) so they can discover and call the API.
 *
 * Field numbers are those of `google/protobuf/descriptor.proto`; names and labels follow protoc's
 * choices (map fields as repeated `<Field>Entry` nested messages with `map_entry`, proto3 `optional` as a
 * synthetic oneof `_<field>` with `proto3_optional`, `json_name` in lowerCamelCase).
 *
 * @internal
 */
import type { ContractPlan } from "./contract.js"
import { enumValueNames } from "./emit.js"
import { type EnumType, type Field, type MessageType, type ScalarName, type Type, unwrapMapped } from "./types.js"
import { Writer } from "./wire.js"

// FieldDescriptorProto.Type
const scalarTypes: Record<ScalarName, number> = {
  double: 1,
  float: 2,
  int64: 3,
  uint64: 4,
  int32: 5,
  fixed64: 6,
  fixed32: 7,
  bool: 8,
  string: 9,
  bytes: 12,
  uint32: 13,
  sfixed32: 15,
  sfixed64: 16,
  sint32: 17,
  sint64: 18
}
const TYPE_MESSAGE = 11
const TYPE_ENUM = 14
const LABEL_OPTIONAL = 1
const LABEL_REPEATED = 3

const LEN = 2
const VARINT = 0
const key = (w: Writer, field: number, wire: number): void => w.uint32((field << 3) | wire)
const str = (w: Writer, field: number, value: string): void => {
  key(w, field, LEN)
  w.string(value)
}
const num = (w: Writer, field: number, value: number): void => {
  key(w, field, VARINT)
  w.uint32(value)
}
const sub = (w: Writer, field: number, body: (w: Writer) => void): void => {
  key(w, field, LEN)
  const start = w.beginLength()
  body(w)
  w.endLength(start)
}

/** protoc's json_name: underscores dropped, the letter after one upper-cased. */
const jsonName = (name: string): string => name.replace(/_+([a-zA-Z0-9])/g, (_, c: string) => c.toUpperCase())

/** protoc's map entry name: `my_field` → `MyFieldEntry`. */
const mapEntryName = (name: string): string => {
  const camel = jsonName(name)
  return camel.charAt(0).toUpperCase() + camel.slice(1) + "Entry"
}

interface FieldType {
  readonly type: number
  readonly typeName: string | undefined
}

const valueType = (type: Type, qualify: (name: string) => string): FieldType => {
  const core = unwrapMapped(type)
  switch (core._tag) {
    case "Scalar":
      return { type: scalarTypes[core.scalar], typeName: undefined }
    case "Enum":
      return { type: TYPE_ENUM, typeName: qualify(core.name) }
    case "Message":
      return { type: TYPE_MESSAGE, typeName: qualify(core.name) }
    default:
      throw new Error(`internal: ${core._tag} is not a value type`)
  }
}

interface FieldLine {
  readonly name: string
  readonly number: number
  readonly label: number
  readonly type: FieldType
  readonly oneofIndex?: number | undefined
  readonly proto3Optional?: boolean | undefined
}

const writeField = (w: Writer, field: FieldLine): void =>
  sub(w, 2, (w) => {
    str(w, 1, field.name)
    num(w, 3, field.number)
    num(w, 4, field.label)
    num(w, 5, field.type.type)
    if (field.type.typeName !== undefined) str(w, 6, field.type.typeName)
    if (field.oneofIndex !== undefined) num(w, 9, field.oneofIndex)
    str(w, 10, jsonName(field.name))
    if (field.proto3Optional === true) num(w, 17, 1)
  })

const writeMessage = (w: Writer, message: MessageType, qualify: (name: string) => string): void =>
  sub(w, 4, (w) => {
    str(w, 1, message.name)
    const oneofs: Array<string> = []
    const maps: Array<{ readonly entry: string; readonly key: FieldType; readonly value: FieldType }> = []
    if (message.oneof !== undefined) {
      oneofs.push(message.oneof.name)
      for (const member of message.oneof.members) {
        writeField(w, {
          name: member.fieldName,
          number: member.number,
          label: LABEL_OPTIONAL,
          type: valueType(member.type, qualify),
          oneofIndex: 0
        })
      }
    } else {
      // Synthetic oneofs (proto3 optional) come after the real ones; messages with fields have none.
      for (const field of message.fields) {
        const line = fieldLine(field, message, qualify, oneofs, maps)
        if (line !== undefined) writeField(w, line)
      }
    }
    for (const map of maps) {
      sub(w, 3, (w) => {
        str(w, 1, map.entry)
        writeField(w, { name: "key", number: 1, label: LABEL_OPTIONAL, type: map.key })
        writeField(w, { name: "value", number: 2, label: LABEL_OPTIONAL, type: map.value })
        sub(w, 7, (w) => num(w, 7, 1)) // MessageOptions.map_entry = true
      })
    }
    for (const oneof of oneofs) sub(w, 8, (w) => str(w, 1, oneof))
  })

const fieldLine = (
  field: Field,
  message: MessageType,
  qualify: (name: string) => string,
  oneofs: Array<string>,
  maps: Array<{ readonly entry: string; readonly key: FieldType; readonly value: FieldType }>
): FieldLine | undefined => {
  const type = unwrapMapped(field.type)
  switch (type._tag) {
    case "Constant":
      return undefined
    case "Repeated":
      return { name: field.name, number: field.number, label: LABEL_REPEATED, type: valueType(type.element, qualify) }
    case "Map": {
      const entry = mapEntryName(field.name)
      maps.push({ entry, key: valueType(type.key, qualify), value: valueType(type.value, qualify) })
      return {
        name: field.name,
        number: field.number,
        label: LABEL_REPEATED,
        type: { type: TYPE_MESSAGE, typeName: `${qualify(message.name)}.${entry}` }
      }
    }
    case "Optional": {
      const inner = unwrapMapped(type.inner)
      if (inner._tag === "Message") {
        return { name: field.name, number: field.number, label: LABEL_OPTIONAL, type: valueType(inner, qualify) }
      }
      oneofs.push(`_${field.name}`)
      return {
        name: field.name,
        number: field.number,
        label: LABEL_OPTIONAL,
        type: valueType(inner, qualify),
        oneofIndex: oneofs.length - 1,
        proto3Optional: true
      }
    }
    default:
      return { name: field.name, number: field.number, label: LABEL_OPTIONAL, type: valueType(type, qualify) }
  }
}

const writeEnum = (w: Writer, e: EnumType): void =>
  sub(w, 5, (w) => {
    str(w, 1, e.name)
    enumValueNames(e).forEach((name, i) =>
      sub(w, 2, (w) => {
        str(w, 1, name)
        key(w, 2, VARINT)
        w.uint32(i)
      })
    )
  })

/** The serialized `FileDescriptorProto` of a planned contract, as file `fileName`. */
export const fileDescriptor = (plan: ContractPlan, fileName: string): Uint8Array => {
  const prefix = plan.package === undefined ? "." : `.${plan.package}.`
  const qualify = (name: string) => prefix + name
  const w = new Writer(4096)
  str(w, 1, fileName)
  if (plan.package !== undefined) str(w, 2, plan.package)
  for (const named of plan.named) {
    if (named._tag === "Message") writeMessage(w, named, qualify)
  }
  for (const named of plan.named) {
    if (named._tag === "Enum") writeEnum(w, named)
  }
  sub(w, 6, (w) => {
    str(w, 1, plan.serviceName)
    for (const rpc of plan.rpcs) {
      sub(w, 2, (w) => {
        str(w, 1, rpc.name)
        str(w, 2, qualify(rpc.request))
        str(w, 3, qualify(rpc.response))
        if (rpc.clientStream) num(w, 5, 1)
        if (rpc.serverStream) num(w, 6, 1)
      })
    }
  })
  str(w, 12, "proto3")
  return w.finish()
}
