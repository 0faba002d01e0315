/**
 * prom-client's modules imported by path (src/telemetry/prom.ts): each module.exports is one class or
 * function, typed there as the package's own export (its test checks they are the same).
 */
declare module 'prom-client/lib/*' {
  const value: unknown
  export default value
}
