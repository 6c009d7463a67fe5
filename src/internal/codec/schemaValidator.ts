/**
 * A compiled fast path for transformation-free Schemas.
 *
 * `compile(ast)` returns a plain synchronous predicate answering "would `ParseResult`'s decode (and encode) of
 * `u` succeed AND return a value equal to `u` itself?", or `undefined` when the AST contains something it does
 * not support (transformations, declarations, bigint, symbols, template literals, ...). Codecs use it to skip
 * Schema's generic interpreter — and the copy it allocates — for the common case of an already well-formed
 * value; anything the predicate rejects goes through `ParseResult`, so error messages never change.
 *
 * Why two predicates per node: a union returns the output of the *first* member (in Schema's search order)
 * that decodes, so `Union(Struct({ a }), Struct({ a, b }))` decodes `{ a, b }` to `{ a }`. A union is the
 * identity for `u` only if some member is the identity for `u` and every member that accepts `u` is also the
 * identity for it (then the order does not matter). `accepts` may over-approximate ("decode would succeed");
 * over-approximating only sends more values to the slow path. Schema's search tree never hides an accepting
 * member (a member is bucketed under one of its own literal tags, which an accepted value must carry), so
 * "some member accepts" is the same as "the union decodes".
 *
 * Transformation-free means decoding and encoding run the same checks and produce the same output, so one
 * predicate serves both directions.
 *
 * Known leniency (values a decoder never produces): symbol keys and extra non-index properties on arrays are
 * not looked at; neither JSON nor msgpack serializes them.
 */
import * as Option from "effect/Option"
import * as AST from "effect/SchemaAST"

/** `(u) => boolean`: true only if Schema's decode and encode of `u` succeed and return a value equal to `u`. */
export type Validator = (u: unknown) => boolean

interface Node {
  /** Decode succeeds and its output equals the input (no stripped keys, no copies that differ). */
  readonly is: Validator
  /** Decode succeeds (may over-approximate). */
  readonly accepts: Validator
  /** Whether `accepts(u)` implies `is(u)` (nothing can be stripped below this node). */
  readonly lossless: boolean
}

const cache = new WeakMap<AST.AST, Validator | null>()

/**
 * The fast predicate for a Schema AST, or `undefined` when the AST is not supported (the caller keeps
 * the `ParseResult` path). Compiled once per AST.
 */
export const compile = (ast: AST.AST): Validator | undefined => {
  const cached = cache.get(ast)
  if (cached !== undefined) return cached ?? undefined
  const root = compileNode(ast, new Map())
  const validator: Validator | null = root === undefined ? null : guard(root.is)
  cache.set(ast, validator)
  return validator ?? undefined
}

// A throwing user filter or a stack overflow on deeply nested input must not escape the codec: the
// slow path then reports (or throws) exactly as it did before.
const guard = (is: Validator): Validator => (u) => {
  try {
    return is(u)
  } catch {
    return false
  }
}

const hasOwn = Object.prototype.hasOwnProperty
const isEnumerable = Object.prototype.propertyIsEnumerable
const getPrototypeOf = Object.getPrototypeOf
const ObjectPrototype = Object.prototype

const always: Validator = () => true
const never: Validator = () => false
const leaf = (is: Validator): Node => ({ is, accepts: is, lossless: true })

const isString: Validator = (u) => typeof u === "string"
const isNumber: Validator = (u) => typeof u === "number"
const isBoolean: Validator = (u) => typeof u === "boolean"
const isUndefined: Validator = (u) => u === undefined

const compileNode = (ast: AST.AST, memo: Map<AST.AST, Node | undefined>): Node | undefined => {
  if (memo.has(ast)) return memo.get(ast)
  // Parse options annotations change how Schema treats excess keys and what filters receive; rare, so not
  // worth matching here.
  if (Option.isSome(AST.getParseOptionsAnnotation(ast))) return remember(memo, ast, undefined)
  switch (ast._tag) {
    case "StringKeyword":
      return remember(memo, ast, leaf(isString))
    case "NumberKeyword":
      // Schema's NumberKeyword is `typeof u === "number"`: NaN and ±Infinity pass.
      return remember(memo, ast, leaf(isNumber))
    case "BooleanKeyword":
      return remember(memo, ast, leaf(isBoolean))
    case "UndefinedKeyword":
      return remember(memo, ast, leaf(isUndefined))
    case "UnknownKeyword":
    case "AnyKeyword":
    case "VoidKeyword":
      // ParseResult returns the input as-is for all three.
      return remember(memo, ast, leaf(always))
    case "NeverKeyword":
      return remember(memo, ast, leaf(never))
    case "Literal": {
      const literal = ast.literal
      return remember(memo, ast, leaf((u) => u === literal))
    }
    case "Enums": {
      const values = ast.enums.map(([, value]) => value)
      return remember(memo, ast, leaf((u) => values.some((value) => value === u)))
    }
    case "Refinement":
      return remember(memo, ast, compileRefinement(ast, memo))
    case "TupleType":
      return remember(memo, ast, compileTuple(ast, memo))
    case "TypeLiteral":
      return remember(memo, ast, compileTypeLiteral(ast, memo))
    case "Union":
      return remember(memo, ast, compileUnion(ast, memo))
    case "Suspend":
      return compileSuspend(ast, memo)
    default:
      // Transformation, Declaration, BigIntKeyword, SymbolKeyword, UniqueSymbol, ObjectKeyword, TemplateLiteral
      return remember(memo, ast, undefined)
  }
}

const remember = (memo: Map<AST.AST, Node | undefined>, ast: AST.AST, node: Node | undefined): Node | undefined => {
  memo.set(ast, node)
  return node
}

const compileRefinement = (ast: AST.Refinement, memo: Map<AST.AST, Node | undefined>): Node | undefined => {
  const from = compileNode(ast.from, memo)
  if (from === undefined) return undefined
  // ParseResult calls `filter(output of from, options ?? defaultParseOption, ast)`; with no options given
  // (how codecs call it) that is `defaultParseOption`. When `from` is the identity its output is `u`.
  const filter = ast.filter
  const options = AST.defaultParseOption
  const passes = (u: unknown): boolean => Option.isNone(filter(u, options, ast))
  const fromIs = from.is
  const is: Validator = (u) => fromIs(u) && passes(u)
  if (from.lossless) return { is, accepts: is, lossless: true }
  // The filter sees `from`'s (possibly stripped) output, which we do not build: over-approximate.
  return { is, accepts: from.accepts, lossless: false }
}

const compileTuple = (ast: AST.TupleType, memo: Map<AST.AST, Node | undefined>): Node | undefined => {
  const elements: Array<Node> = []
  for (const element of ast.elements) {
    const node = compileNode(element.type, memo)
    if (node === undefined) return undefined
    elements.push(node)
  }
  const rest: Array<Node> = []
  for (const type of ast.rest) {
    const node = compileNode(type.type, memo)
    if (node === undefined) return undefined
    rest.push(node)
  }
  const optional = ast.elements.map((element) => element.isOptional)
  // Same counting as ParseResult: required elements plus the elements after the rest element.
  const requiredLength = optional.filter((isOptional) => !isOptional).length + Math.max(0, rest.length - 1)
  const elementCount = elements.length
  const hasRest = rest.length > 0
  const head = rest[0]
  const tail = rest.slice(1)
  const tailCount = tail.length

  // Excess indexes are an error (not stripped), so a tuple is lossless when its element types are.
  const make = (select: (node: Node) => Validator): Validator => {
    const elementChecks = elements.map(select)
    const headCheck = head === undefined ? undefined : select(head)
    const tailChecks = tail.map(select)
    return (u) => {
      if (!Array.isArray(u)) return false
      const length = u.length
      if (length < requiredLength) return false
      if (!hasRest && length > elementCount) return false
      let i = 0
      for (; i < elementCount; i++) {
        if (length < i + 1) {
          if (optional[i]) continue
          return false
        }
        if (!elementChecks[i]!(u[i])) return false
      }
      if (headCheck !== undefined) {
        for (; i < length - tailCount; i++) {
          if (!headCheck(u[i])) return false
        }
        for (let j = 0; j < tailCount; j++) {
          const index = i + j
          if (length < index + 1) continue
          if (!tailChecks[j]!(u[index])) return false
        }
      }
      return true
    }
  }
  const lossless = elements.every((node) => node.lossless) && rest.every((node) => node.lossless)
  const is = make((node) => node.is)
  return { is, accepts: lossless ? is : make((node) => node.accepts), lossless }
}

const compileTypeLiteral = (ast: AST.TypeLiteral, memo: Map<AST.AST, Node | undefined>): Node | undefined => {
  if (ast.propertySignatures.length === 0 && ast.indexSignatures.length === 0) {
    // ParseResult: `{}` is `Predicate.isNotNullable` and returns the input itself (primitives included).
    return leaf((u) => u !== null && u !== undefined)
  }
  const names: Array<string> = []
  const optional: Array<boolean> = []
  const properties: Array<Node> = []
  for (const ps of ast.propertySignatures) {
    // Symbol keys are out of scope; Schema's output assigns "__proto__" through the setter (drops it).
    if (typeof ps.name !== "string" || ps.name === "__proto__") return undefined
    const node = compileNode(ps.type, memo)
    if (node === undefined) return undefined
    names.push(ps.name)
    optional.push(ps.isOptional)
    properties.push(node)
  }
  const indexes: Array<Node> = []
  for (const is of ast.indexSignatures) {
    // Only plain string keys: a refined or template-literal key parameter strips the keys it rejects.
    if (is.parameter._tag !== "StringKeyword") return undefined
    const node = compileNode(is.type, memo)
    if (node === undefined) return undefined
    indexes.push(node)
  }
  // Check literal-typed properties (discriminators) first: in a union the wrong members fail fast.
  const order = names.map((_, i) => i).sort((a, b) =>
    rank(ast.propertySignatures[a]!) - rank(ast.propertySignatures[b]!)
  )
  const sortedNames = order.map((i) => names[i]!)
  const sortedOptional = order.map((i) => optional[i]!)
  const sortedProperties = order.map((i) => properties[i]!)
  const count = sortedNames.length

  const propertyIs = sortedProperties.map((node) => node.is)
  const indexIs = indexes.map((node) => node.is)
  const indexCount = indexIs.length

  // Identity: a plain object (Schema's output is always a fresh plain object), every declared key present
  // unless optional, and no enumerable key Schema would strip. Without index signatures that is a count:
  // the declared keys found (own or inherited, enumerable or not) must equal the object's enumerable keys
  // (for...in, no allocation), so an excess key, an inherited or a non-enumerable declared key all fail.
  const is: Validator = indexCount === 0
    ? (u) => {
      if (typeof u !== "object" || u === null || getPrototypeOf(u) !== ObjectPrototype) return false
      let present = 0
      for (let i = 0; i < count; i++) {
        const name = sortedNames[i]!
        const value = (u as Record<string, unknown>)[name]
        if (value === undefined && !hasOwn.call(u, name)) {
          // A missing required key would come out as `key: undefined` (if the type allows undefined).
          if (sortedOptional[i]) continue
          return false
        }
        if (!propertyIs[i]!(value)) return false
        present++
      }
      let keys = 0
      for (const _ in u) keys++
      return keys === present
    }
    : (u) => {
      if (typeof u !== "object" || u === null || getPrototypeOf(u) !== ObjectPrototype) return false
      for (let i = 0; i < count; i++) {
        const name = sortedNames[i]!
        if (!isEnumerable.call(u, name)) {
          if (sortedOptional[i] && !hasOwn.call(u, name)) continue
          return false
        }
        if (!propertyIs[i]!((u as Record<string, unknown>)[name])) return false
      }
      for (const key in u) {
        // JSON.parse makes "__proto__" an own key; Schema's output would set the prototype instead.
        if (key === "__proto__") return false
        const value = (u as Record<string, unknown>)[key]
        for (let j = 0; j < indexCount; j++) {
          if (!indexIs[j]!(value)) return false
        }
      }
      return true
    }

  const propertyAccepts = sortedProperties.map((node) => node.accepts)
  const indexAccepts = indexes.map((node) => node.accepts)
  // What ParseResult checks (default options): any non-array object; a missing required key is parsed as
  // `undefined`; index signatures over `Object.keys`.
  const accepts: Validator = (u) => {
    if (typeof u !== "object" || u === null || Array.isArray(u)) return false
    for (let i = 0; i < count; i++) {
      const name = sortedNames[i]!
      if (!hasOwn.call(u, name)) {
        if (sortedOptional[i]) continue
        if (!propertyAccepts[i]!(undefined)) return false
        continue
      }
      if (!propertyAccepts[i]!((u as Record<string, unknown>)[name])) return false
    }
    if (indexCount > 0) {
      for (const key of Object.keys(u)) {
        const value = (u as Record<string, unknown>)[key]
        for (let j = 0; j < indexCount; j++) {
          if (!indexAccepts[j]!(value)) return false
        }
      }
    }
    return true
  }
  return { is, accepts, lossless: false }
}

const rank = (ps: AST.PropertySignature): number => ps.type._tag === "Literal" && !ps.isOptional ? 0 : 1

const compileUnion = (ast: AST.Union, memo: Map<AST.AST, Node | undefined>): Node | undefined => {
  const members: Array<Node> = []
  for (const type of ast.types) {
    const node = compileNode(type, memo)
    if (node === undefined) return undefined
    members.push(node)
  }
  const memberIs = members.map((node) => node.is)
  const memberCount = members.length
  if (members.every((node) => node.lossless)) {
    const is: Validator = (u) => {
      for (let i = 0; i < memberCount; i++) {
        if (memberIs[i]!(u)) return true
      }
      return false
    }
    return { is, accepts: is, lossless: true }
  }
  // Lossy members: whichever accepting member Schema tries first produces the output, so all of them
  // must be the identity for `u`.
  const lossy = members.map((node) => !node.lossless)
  const memberAccepts = members.map((node) => node.accepts)
  const is: Validator = (u) => {
    let found = false
    for (let i = 0; i < memberCount; i++) {
      if (memberIs[i]!(u)) found = true
      else if (lossy[i] && memberAccepts[i]!(u)) return false
    }
    return found
  }
  const accepts: Validator = (u) => {
    for (let i = 0; i < memberCount; i++) {
      if (memberAccepts[i]!(u)) return true
    }
    return false
  }
  return { is, accepts, lossless: false }
}

// Recursive schemas: the Suspend node gets a forwarding Node before its target is compiled, so a cycle
// ends at the forwarder. Lossless is unknown inside the cycle: say false (only costs slow-path calls).
const compileSuspend = (ast: AST.Suspend, memo: Map<AST.AST, Node | undefined>): Node | undefined => {
  // The forwarder's closures run only after `target` is set (compiling never calls a predicate).
  const forward: Node = {
    is: (u) => target!.is(u),
    accepts: (u) => target!.accepts(u),
    lossless: false
  }
  memo.set(ast, forward)
  const target: Node | undefined = compileNode(ast.f(), memo)
  if (target === undefined) return remember(memo, ast, undefined)
  return forward
}
