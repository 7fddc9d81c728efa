// wrangler (and vitest-pool-workers) turn a `.wasm` import into a precompiled WebAssembly.Module.
declare module '*.wasm' {
  const module: WebAssembly.Module
  export default module
}
