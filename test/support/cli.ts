/** A whole-number option of a development CLI (`--name`), or exit 2 naming it. */
export const wholeOption = (name: string, text: string, max: number, min = 0): number => {
  const n = Number(text)
  if (!Number.isInteger(n) || n < min || n > max) {
    process.stderr.write(`--${name}: expected a whole number ${min}-${max}, got ${JSON.stringify(text)}\n`)
    process.exit(2)
  }
  return n
}
