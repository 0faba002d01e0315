/** True the first time it is called, then again only once a minute has passed since it last was: for warnings that would flood the log. */
export function onceAMinute(): () => boolean {
  let last = -Infinity
  return () => {
    const now = Date.now()
    if (now - last <= 60_000) return false
    last = now
    return true
  }
}
