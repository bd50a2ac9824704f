// Files bundled as assets (`import path from "./x.so" with { type: "file" }` yields their path).
declare module "*.so" {
  const path: string
  export default path
}
declare module "*.dylib" {
  const path: string
  export default path
}
