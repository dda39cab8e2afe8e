import { Schema } from "effect"

/** Start-up stops on this: every connect attempt (1 + PG_CONNECT_RETRIES) failed. `target` is password-free. */
export class DatabaseUnreachable extends Schema.TaggedError<DatabaseUnreachable>()("DatabaseUnreachable", {
  target: Schema.String,
  attempts: Schema.Number,
  reason: Schema.String
}) {
  override get message(): string {
    return `database unreachable: ${this.target} after ${this.attempts} attempt(s): ${this.reason}`
  }
}

/** Start-up stops on this: the embedded server, the client options, the migrations or the instance row failed. */
export class DatabaseStartFailed extends Schema.TaggedError<DatabaseStartFailed>()("DatabaseStartFailed", {
  stage: Schema.Literals(["embedded", "client", "migrations", "instance"]),
  target: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `database start failed (${this.stage}) on ${this.target}: ${this.reason}`
  }
}

export type DatabaseError = DatabaseUnreachable | DatabaseStartFailed

/** The URL as it may appear in logs and errors: the password replaced by `***`. */
export const redactUrl = (url: string): string => {
  try {
    const parsed = new URL(url)
    if (parsed.password !== "") parsed.password = "***"
    return parsed.toString()
  } catch {
    return "<unparsable database url>"
  }
}

/** An error's message and its causes' (the driver's reason is often two levels down), secrets cut out. */
export const describe = (error: unknown, secrets: ReadonlyArray<string>): string => {
  const messages: Array<string> = []
  let current: unknown = error
  for (let depth = 0; depth < 4 && current !== undefined && current !== null; depth++) {
    const text = current instanceof Error ? current.message : typeof current === "string" ? current : ""
    if (text !== "" && !messages.some((m) => m.includes(text))) messages.push(text)
    current = current instanceof Error ? current.cause : undefined
  }
  const text = messages.length > 0 ? messages.join(": ") : String(error)
  return secrets.reduce((acc, secret) => (secret === "" ? acc : acc.split(secret).join("***")), text)
}
