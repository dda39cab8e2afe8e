/**
 * Sanity check of the SDP fixtures (maintenance tool, no dependencies): `node scripts/capture-sdp/check.ts [dir]`,
 * default test/fixtures/sdp. Every .sdp must have CRLF line endings, a=group:BUNDLE, a=fingerprint, a=setup and
 * m= lines with a mid each; every .sdpfrag must have CRLF, a=ice-ufrag, a=ice-pwd, an m= line, a=mid and a=candidate.
 * Prints one line per file (media sections, directions, candidate count) and exits 1 if any file fails.
 */
import { readdir, readFile } from "node:fs/promises"
import { join } from "node:path"

const dir = process.argv[2] ?? "test/fixtures/sdp"

/** Problems with one file's text; empty when it passes. */
const problems = (name: string, text: string): Array<string> => {
  const found: Array<string> = []
  if (/(?<!\r)\n/.test(text)) found.push("bare LF line ending")
  if (!text.endsWith("\r\n")) found.push("no CRLF after the last line")
  const lines = text.split("\r\n")
  const has = (prefix: string) => lines.some((line) => line.startsWith(prefix))
  const required = name.endsWith(".sdpfrag")
    ? ["a=ice-ufrag:", "a=ice-pwd:", "m=", "a=mid:", "a=candidate:"]
    : ["v=0", "a=group:BUNDLE", "a=fingerprint:", "a=setup:", "m="]
  for (const prefix of required) if (!has(prefix)) found.push(`no ${prefix}`)
  const sections = text.split(/\r\nm=/).slice(1)
  sections.forEach((section, index) => {
    if (!/\r\na=mid:/.test(section)) found.push(`m-section ${index} has no a=mid`)
  })
  return found
}

const summary = (text: string): string => {
  const sections = text.split(/\r\nm=/).slice(1)
  const media = sections.map((section) => {
    const kind = section.slice(0, section.indexOf(" "))
    const direction = /\r\na=(sendonly|recvonly|sendrecv|inactive)\r\n/.exec(section)?.[1] ?? "-"
    return `${kind}/${direction}`
  })
  const candidates = text.split("\r\n").filter((line) => line.startsWith("a=candidate:")).length
  return `${media.join(" ")}, ${candidates} candidate line(s)`
}

const files = (await readdir(dir)).filter((name) => name.endsWith(".sdp") || name.endsWith(".sdpfrag")).sort()
let failed = 0
for (const name of files) {
  const text = await readFile(join(dir, name), "utf8")
  const found = problems(name, text)
  if (found.length > 0) failed++
  console.log(`${found.length === 0 ? "ok  " : "FAIL"} ${name}: ${summary(text)}${found.length === 0 ? "" : ` -- ${found.join("; ")}`}`)
}
console.log(`${files.length - failed} passed, ${failed} failed`)
process.exitCode = failed === 0 ? 0 : 1
