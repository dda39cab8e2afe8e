import { existsSync, readFileSync } from "node:fs"

/** The samples of a finalized WAV recording (its header's sizes match the file), else undefined. */
export const finalizedWav = (file: string): Int16Array | undefined => {
  if (!existsSync(file)) return undefined
  const bytes = readFileSync(file)
  if (bytes.length < 44 || bytes.toString("ascii", 0, 4) !== "RIFF" || bytes.readUInt32LE(4) !== bytes.length - 8) return undefined
  let offset = 12
  while (offset + 8 <= bytes.length) {
    const id = bytes.toString("ascii", offset, offset + 4)
    const size = bytes.readUInt32LE(offset + 4)
    if (id === "data") {
      if (offset + 8 + size !== bytes.length) return undefined
      const copy = bytes.subarray(offset + 8, offset + 8 + size)
      return new Int16Array(copy.buffer.slice(copy.byteOffset, copy.byteOffset + copy.byteLength))
    }
    offset += 8 + size + (size % 2)
  }
  return undefined
}
