/**
 * The dashboard in a real browser against a running system: two services in child processes (`testing` on two
 * nodes, `other` on one; TCP, mdns on a private loopback port), `micro gateway --ui` in another process, and
 * Debian's Chromium (`scripts/engines.sh install chromium`) driven by playwright-core (no browser download).
 * The page lists both services, calls an endpoint through its generated form, shows typed errors for bad
 * input, tails a topic, and drops a node live when its process is killed. Screenshots go to test-output/.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Scope from "effect/Scope"
import * as fs from "node:fs"
import * as path from "node:path"
import { type Browser, chromium, type Page } from "playwright-core"
import { Broker, CachedRegistry, HttpBroker, MdnsRegistry } from "../../src/index.js"
import * as cli from "../support/cli.js"
import { type Child, spawnFixture } from "../support/processes.js"

const root = path.resolve(import.meta.dirname, "../..")
const output = path.resolve(root, "test-output")
const chromiumPath = "/usr/bin/chromium"
const mdnsPort = 20000 + Math.floor(Math.random() * 20000)
const fixture = "test/process/fixtures/rpcServer.ts"
// The node killed below must leave the gateway's registry by expiry, not by a goodbye: a short TTL.
const shortTtl = { REGISTER_TTL_MS: "3000", REGISTER_INTERVAL_MS: "1000" }
// Four processes start at once on a 2-core machine.
const readyMillis = 60_000

/** `micro gateway --ui` on a free port; its base URL once it listens. Killed with the scope. */
const startGateway = cli.gateway(
  ["--ui", "--mdns-interface", "127.0.0.1", "--mdns-port", String(mdnsPort)],
  readyMillis
)

/** A publisher in this process: the HTTP broker over the same loopback mdns. */
const Publisher = HttpBroker.layer().pipe(
  Layer.provide(CachedRegistry.layer()),
  Layer.provide(MdnsRegistry.layer({ ...MdnsRegistry.loopback, port: mdnsPort }))
)

let scope: Scope.CloseableScope
let gateway: string
let t2: Child
let browser: Browser
let page: Page

beforeAll(async () => {
  if (!fs.existsSync(chromiumPath)) {
    throw new Error(`${chromiumPath} is missing: install it with scripts/engines.sh install chromium`)
  }
  fs.mkdirSync(output, { recursive: true })
  scope = await Effect.runPromise(Scope.make())
  const started = await Effect.runPromise(
    Effect.all([
      spawnFixture(fixture, { NODE_ID: "t1", MDNS_PORT: String(mdnsPort) }, readyMillis),
      spawnFixture(fixture, { NODE_ID: "t2", MDNS_PORT: String(mdnsPort), ...shortTtl }, readyMillis),
      spawnFixture(fixture, { NODE_ID: "o1", SERVICE: "other", MDNS_PORT: String(mdnsPort) }, readyMillis),
      startGateway
    ], { concurrency: 4 }).pipe(Scope.extend(scope))
  )
  t2 = started[1]
  gateway = started[3]
  browser = await chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox"] })
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 } })
}, 90_000)

afterAll(async () => {
  await browser?.close()
  if (scope) await Effect.runPromise(Scope.close(scope, Exit.void))
})

const service = (name: string) => page.locator(`#services .service[data-service="${name}"]`)

describe("dashboard in Chromium (processes)", { timeout: 90_000 }, () => {
  it("lists both services with their nodes, calls through the form, shows typed errors, tails a topic, drops a killed node", async () => {
    await page.goto(`${gateway}/ui`)
    await expect.poll(() => page.locator("#live").getAttribute("data-state"), { timeout: 10_000 }).toBe("live")

    // Both services, the nodes of each (found by the gateway over mdns, as they register).
    await service("testing").locator(`tr[data-node="t2"]`).waitFor({ timeout: 15_000 })
    await service("testing").locator(`tr[data-node="t1"]`).waitFor({ timeout: 15_000 })
    await service("other").locator(`tr[data-node="o1"]`).waitFor({ timeout: 15_000 })
    expect(await service("testing").locator(`tr[data-node="t1"]`).innerText()).toContain("127.0.0.1:")

    // One service: its nodes' health, its endpoints with their schemas and forms.
    await service("testing").click()
    await page.locator(`#nodes-detail tr[data-node="t1"] .serving`).waitFor({ timeout: 10_000 })
    const hello = page.locator(`.endpoint[data-endpoint="Hello"]`)
    await hello.locator("form.call").waitFor({ timeout: 10_000 })
    expect(await hello.locator("details pre").first().textContent()).toContain(`"required"`)

    // A call through the generated form (a text field for the string property).
    const result = hello.locator(".call-result")
    await hello.locator(`input[name="name"]`).fill("Ada")
    await hello.locator(`button[type="submit"]`).click()
    await result.locator(`.result.ok`).waitFor({ timeout: 10_000 })
    expect(await result.locator("pre").textContent()).toBe(`"Hello, Ada!"`)
    expect(await result.locator(".status-line").textContent()).toMatch(/^200 /)

    // The endpoint's own typed error.
    await hello.locator(`input[name="name"]`).fill("nobody")
    await hello.locator(`button[type="submit"]`).click()
    await result.locator(`.result.error`).waitFor({ timeout: 10_000 })
    expect(await result.locator(".status-line").textContent()).toContain("typed error UnknownName")
    expect(JSON.parse((await result.locator("pre").textContent())!)).toMatchObject({
      _tag: "UnknownName",
      name: "nobody"
    })

    // Bad input: a payload that does not match the schema, typed in the JSON editor → the framework's BadRequest.
    await hello.locator(`input[name="__raw"]`).check()
    await hello.locator(`textarea[name="__json"]`).fill(`{"nom": 1}`)
    await hello.locator(`button[type="submit"]`).click()
    await expect.poll(() => result.locator(".status-line").textContent(), { timeout: 10_000 }).toMatch(/^400 /)
    const badRequest = JSON.parse((await result.locator("pre").textContent())!)
    expect(badRequest).toMatchObject({ code: 400, status: "Bad Request" })
    expect(Object.keys(badRequest)).toEqual(expect.arrayContaining(["id", "code", "detail", "status"]))

    // A number field that is not a number: sent as typed, the service's validation answers.
    const sleep = page.locator(`.endpoint[data-endpoint="Sleep"]`)
    await sleep.locator(`input[name="millis"]`).fill("soon")
    await sleep.locator(`button[type="submit"]`).click()
    await sleep.locator(`.result.error`).waitFor({ timeout: 10_000 })
    expect(await sleep.locator(".status-line").textContent()).toMatch(/^400 /)
    // A server-streaming endpoint: the gateway answers NDJSON, shown as it came.
    const countdown = page.locator(`.endpoint[data-endpoint="Countdown"]`)
    await countdown.locator(`input[name="from"]`).fill("2")
    await countdown.locator(`button[type="submit"]`).click()
    await countdown.locator(`.result.ok`).waitFor({ timeout: 10_000 })
    expect((await countdown.locator(".result").textContent())!.trim().split("\n")).toEqual(["2", "1", "0"])
    await page.screenshot({ path: path.join(output, "dashboard-calls.png"), fullPage: true })

    // A live tail of a topic: a message published by another process shows up.
    await page.locator("#tail-topic").fill("dashboard.test")
    await page.locator("#tail-start").click()
    await expect.poll(() => page.locator("#tail-status").textContent(), { timeout: 10_000 }).toContain("tailing")
    // Published until the page shows it: publishing before this process' registry has seen the gateway's
    // subscription (over mdns) reaches nobody.
    const publisher = ManagedRuntime.make(Publisher)
    const publish = Broker.publish("dashboard.test", new TextEncoder().encode(`{"order":42}`), {
      contentType: "application/json",
      headers: { tenant: "acme" }
    })
    try {
      for (let attempt = 0; attempt < 50; attempt++) {
        await publisher.runPromise(publish)
        const shown = await page.locator(`#tail li`).first().waitFor({ timeout: 200 }).then(() => true, () => false)
        if (shown) break
      }
    } finally {
      await publisher.dispose()
    }
    await page.locator(`#tail li[data-seq="1"]`).waitFor({ timeout: 10_000 })
    expect(await page.locator(`#tail li[data-seq="1"]`).innerText()).toContain(`{"order":42}`)

    // Kill a node (no goodbye): the gateway's registry expires it, and the page drops it live.
    t2.kill("SIGKILL")
    await service("testing").locator(`tr[data-node="t2"]`).waitFor({ state: "detached", timeout: 15_000 })
    await expect.poll(() => page.locator("#changes").innerText()).toContain("t2 gone")
    expect(await service("testing").locator(`tr[data-node="t1"]`).count()).toBe(1)
    expect(await service("other").count()).toBe(1)
    await page.screenshot({ path: path.join(output, "dashboard.png"), fullPage: true })
    expect(fs.statSync(path.join(output, "dashboard.png")).size).toBeGreaterThan(10_000)
  })
})
