// The package ships no types; this is the one entry point the config loader uses.
declare module "@pushcorn/hocon-parser" {
  const parser: {
    /** `scope`: looked up for substitutions before the environment; `env: false`: the process environment is not. */
    parse(
      options: ({ readonly text: string } | { readonly url: string }) & {
        readonly scope?: Readonly<Record<string, string | undefined>>
        readonly env?: boolean
      }
    ): Promise<unknown>
  }
  export default parser
}
