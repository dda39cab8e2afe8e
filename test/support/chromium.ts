import { Effect, Layer } from "effect"
import { type Browser, chromium, type LaunchOptions } from "playwright-core"

/** Debian's Chromium (never a downloaded browser); CHROMIUM_PATH overrides. */
export const CHROMIUM = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium"

/**
 * Headless Chromium with the flags this machine needs (no sandbox as root, no background
 * networking on a closed network) and a fake microphone that plays `wavPath` once.
 */
export const chromiumOptions = (wavPath: string): LaunchOptions => ({
  executablePath: CHROMIUM,
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    `--use-file-for-fake-audio-capture=${wavPath}%noloop`,
    "--autoplay-policy=no-user-gesture-required"
  ]
})

export const launchChromium = (wavPath: string): Promise<Browser> => chromium.launch(chromiumOptions(wavPath))

/**
 * A fresh context and page of `browser` where `/demo` is served under `csp` (the demo must work
 * under the strictest policy a server could send it: nothing inline, no blob: worklet), with the
 * page's console and errors kept in `log`.
 */
export const demoPage = async (browser: Browser, csp: string) => {
  const context = await browser.newContext()
  await context.route("**/demo", async (route) => {
    const response = await route.fetch()
    await route.fulfill({ response, headers: { ...response.headers(), "content-security-policy": csp } })
  })
  const page = await context.newPage()
  const log: Array<string> = []
  page.on("console", (message) => log.push(`${message.type()}: ${message.text()}`))
  page.on("pageerror", (error) => log.push(`pageerror: ${error.message}`))
  return { context, page, log }
}

/** Chromium for the scope of a layer (launched when it is built, closed when it is released); `current()` is the running browser. */
export const scopedChromium = (wavPath: string) => {
  let browser: Browser | undefined
  const layer = Layer.effectDiscard(Effect.acquireRelease(
    Effect.promise(async () => {
      browser = await launchChromium(wavPath)
    }),
    () =>
      Effect.promise(async () => {
        await browser?.close()
        browser = undefined
      })
  ))
  return { layer, current: (): Browser | undefined => browser }
}
