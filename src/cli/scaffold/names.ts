/** The names a generated project uses, all derived from the one given to `micro new`. */
export interface Names {
  /** The project's name: its npm package name, its directory (by default) and the service name it registers. */
  readonly service: string
  /** The contract's identifier, e.g. `DemoSvcApi` for `demo-svc`. */
  readonly contract: string
}

/**
 * Lowercase letters, digits and single hyphens, starting with a letter and not ending with a hyphen: valid as
 * an npm package name, a directory name, a DNS label (multicast DNS advertises the service name) and, once
 * PascalCased, a TypeScript identifier.
 */
const valid = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/

/** Longest name: a DNS label is at most 63 bytes. */
export const maxLength = 63

/** Why `name` cannot name a project, or undefined when it can. */
export const invalidName = (name: string): string | undefined => {
  if (name.length === 0) return "the project name is empty"
  if (name.length > maxLength) return `the project name is longer than ${maxLength} characters`
  if (!valid.test(name)) {
    const rule = "use lowercase letters, digits and single hyphens, starting with a letter"
    return `invalid project name ${JSON.stringify(name)}: ${rule} (e.g. "greeter", "order-service")`
  }
  return undefined
}

/** The names of a project called `service` (already validated). */
export const names = (service: string): Names => ({
  service,
  // The `Api` suffix keeps the identifier clear of the templates' imports (`Server`, `Client`, `Stream` ...) and
  // of JavaScript's globals (`String`, `Map` ...).
  contract: service.split("-").map((part) => part.charAt(0).toUpperCase() + part.slice(1)).join("") + "Api"
})
