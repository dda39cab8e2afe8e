// The package ships no types; this is the one entry point the config loader uses.
declare module "@pushcorn/hocon-parser" {
  const parser: {
    parse(options: { readonly text: string } | { readonly url: string }): Promise<unknown>
  }
  export default parser
}
