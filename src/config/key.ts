import { Config, ConfigProvider, Context, Effect, Option, Redacted } from "effect"
import { InvalidConfig, type RawConfig } from "./source.ts"

/**
 * What settings are read from: the environment merged over the HOCON file's values (see
 * `loadRawConfig`), and the HOCON paths read so far (one decode's own set), so the file's keys no
 * setting reads can be named.
 */
export interface ConfigValues {
  readonly values: RawConfig
  readonly read: Set<string>
}
export class ConfigSource extends Context.Service<ConfigSource, ConfigValues>()("auralink/config/ConfigSource") {}

/** Reading one setting: its value, or the one-line error naming its key. */
export type Read<A> = Effect.Effect<A, InvalidConfig, ConfigSource>

/** What a value must meet, as the error states it. */
export interface Rule<A> {
  readonly expected: string
  readonly check: (a: A) => boolean
}

export const rule = <A>(expected: string, check: (a: A) => boolean = () => true): Rule<A> => ({ expected, check })

const nonEmpty = (value: string | undefined) => (value === undefined || value === "" ? undefined : value)

/** One configuration key: its environment variable (the names users of the earlier system know) and its HOCON path. */
const makeKey = (env: string, hocon: string, options: { readonly secret: boolean; readonly fromFile?: (text: string) => string }) => {
  // The environment wins; the file's value is used when the variable is unset or empty.
  const value = ({ read, values }: ConfigValues): string | undefined => {
    read.add(hocon)
    const given = nonEmpty(values[env])
    if (given !== undefined) return given
    const inFile = nonEmpty(values[hocon])
    return inFile === undefined || options.fromFile === undefined ? inFile : options.fromFile(inFile)
  }
  const invalid = (raw: ConfigValues, expected: string) => {
    const given = value(raw)
    const shown = given === undefined ? "(unset)" : options.secret ? "<redacted>" : JSON.stringify(given)
    // A value from the file names its path too: the variable is what the error's key says, the file is where it was set.
    const from = given !== undefined && nonEmpty(raw.values[env]) === undefined ? ` (${hocon} in the file)` : ""
    return new InvalidConfig({ key: env, value: `${shown}${from}`, expected })
  }
  /** This key is known but not needed here (e.g. DB_HOST when DATABASE_URL is given): not an unknown key of the file. */
  const unused: Read<void> = Effect.map(ConfigSource, ({ read }) => void read.add(hocon))
  /** Fails naming this key, its value (or `<redacted>`) and what was expected. */
  const fail = (expected: string): Read<never> =>
    Effect.gen(function*() {
      return yield* invalid(yield* ConfigSource, expected)
    })
  /** Parses the value with Effect's `Config` (which knows absent from malformed), then checks it. */
  const read = <A>(config: (name: string) => Config.Config<A>, { check, expected }: Rule<A>): Read<A> =>
    Effect.gen(function*() {
      const raw = yield* ConfigSource
      const given = value(raw)
      const provider = ConfigProvider.fromEnvRecord(given === undefined ? {} : { [env]: given })
      const a = yield* config(env).parse(provider).pipe(Effect.mapError(() => invalid(raw, expected)))
      return check(a) ? a : yield* invalid(raw, expected)
    })
  return { fail, read, unused }
}

const list = (value: Option.Option<string>): ReadonlyArray<string> =>
  Option.match(value, { onNone: () => [], onSome: (v) => v.split(",").map((s) => s.trim()).filter((s) => s.length > 0) })

const isUrl = (protocols: ReadonlyArray<string>) => (value: string) => {
  try {
    return protocols.includes(new URL(value).protocol)
  } catch {
    return false
  }
}

const whenGiven = <A>(r: Rule<A>): Rule<Option.Option<A>> => rule(r.expected, Option.match({ onNone: () => true, onSome: r.check }))

/** A plain key, read as the type its setting needs. */
export const key = (env: string, hocon: string) => {
  const { fail, read, unused } = makeKey(env, hocon, { secret: false })
  const optional = (expected = "a string") => read((name) => Config.option(Config.String(name)), rule(expected))
  return {
    fail,
    unused,
    int: (fallback: number, r: Rule<number>) => read((name) => Config.Int(name).pipe(Config.withDefault(fallback)), r),
    port: (fallback: number) => read((name) => Config.Port(name).pipe(Config.withDefault(fallback)), rule(PORT)),
    optionalPort: () => read((name) => Config.option(Config.Port(name)), rule(PORT)),
    /** A number (not only whole), checked when given. */
    number: (r: Rule<number>) => read((name) => Config.option(Config.Number(name)), whenGiven(r)),
    /** A whole number, checked when given. */
    optionalInt: (r: Rule<number>) => read((name) => Config.option(Config.Int(name)), whenGiven(r)),
    flag: (fallback: boolean) => read((name) => Config.Boolean(name).pipe(Config.withDefault(fallback)), rule("true or false")),
    /** A non-empty string. */
    text: (fallback: string, expected = "a non-empty string") =>
      read((name) => Config.String(name).pipe(Config.withDefault(fallback)), rule<string>(expected, (s) => s.length > 0)),
    optional,
    literal: <const L extends ReadonlyArray<string>>(literals: L, fallback: L[number], expected: string) =>
      read((name) => Config.Literals(literals, name).pipe(Config.withDefault<L[number]>(fallback)), rule(expected)),
    /** A comma-separated list (blank entries dropped), each entry checked. */
    list: (entry?: Rule<string>) =>
      Effect.flatMap(optional(), (given) => {
        const entries = list(given)
        return entry === undefined || entries.every(entry.check) ? Effect.succeed(entries) : fail(entry.expected)
      }),
    /** An http:// or https:// URL. */
    endpoint: () =>
      Effect.flatMap(optional(), (given) =>
        Option.isNone(given) || isUrl(["http:", "https:"])(given.value)
          ? Effect.succeed(given)
          : fail("an http:// or https:// URL"))
  }
}

/** A secret key: read as `Redacted`, never shown in an error. `fromFile` adjusts a value that came from the file. */
export const secret = (env: string, hocon: string, fromFile?: (text: string) => string) => {
  const { fail, read, unused } = makeKey(env, hocon, fromFile === undefined ? { secret: true } : { secret: true, fromFile })
  const optional = (): Read<Option.Option<Redacted.Redacted<string>>> => read((name) => Config.option(Config.Redacted(name)), rule("a string"))
  return {
    fail,
    unused,
    optional,
    /** A URL with one of these schemes (`redis:`), when given. */
    url: (protocols: ReadonlyArray<string>, expected: string) => (given: Option.Option<Redacted.Redacted<string>>) =>
      Option.isNone(given) || isUrl(protocols)(Redacted.value(given.value)) ? Effect.succeed(given) : fail(expected)
  }
}

export const positive = (n: number) => n > 0
export const nonNegative = (n: number) => n >= 0
export const within = (min: number, max: number) => (n: number) => n >= min && n <= max

export const PORT = "a TCP/UDP port number 1-65535"
/** A listener port; 0 lets the system pick one. */
export const listenPort = rule(PORT, within(0, 65535))
export const ms = rule("milliseconds > 0", positive)
export const seconds = rule("seconds > 0", positive)
export const count = rule("a whole number > 0", positive)
export const countOrZero = rule("a whole number >= 0", nonNegative)
/** `unit min-max`, e.g. `seconds 10-86400`. */
export const between = (unit: string, min: number, max: number) => rule(`${unit} ${min}-${max}`, within(min, max))
