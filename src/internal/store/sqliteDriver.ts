/** The part of better-sqlite3's API the embedded store uses (the package ships no types). */
export interface Statement {
  run(...params: ReadonlyArray<unknown>): { readonly changes: number }
  get(...params: ReadonlyArray<unknown>): unknown
  all(...params: ReadonlyArray<unknown>): Array<unknown>
  pluck(toggle?: boolean): Statement
  raw(toggle?: boolean): Statement
}
export interface Database {
  prepare(source: string): Statement
  pragma(source: string, options?: { readonly simple?: boolean }): unknown
  exec(source: string): Database
  transaction<F extends (...args: Array<never>) => unknown>(fn: F): F & { readonly immediate: F }
  close(): Database
}
export type DatabaseConstructor = new(filename: string) => Database
