/** An `a=fmtp` parameter list: `key=value;key=value` (values that are plain integers as numbers). */
export type Fmtp = Readonly<Record<string, string | number>>

/** Kept as text even when all digits: an H.264 profile-level-id such as `640034` is hexadecimal. */
const textual = new Set(["profile-level-id"])

export const parseFmtp = (config: string): Fmtp => {
  const parameters: Record<string, string | number> = {}
  for (const part of config.split(";")) {
    const at = part.indexOf("=")
    const key = (at < 0 ? part : part.slice(0, at)).trim()
    if (key.length === 0) continue
    const value = at < 0 ? "" : part.slice(at + 1).trim()
    parameters[key] = /^\d+$/.test(value) && !textual.has(key) ? Number(value) : value
  }
  return parameters
}

export const formatFmtp = (parameters: Fmtp): string => Object.entries(parameters).map(([key, value]) => `${key}=${value}`).join(";")
