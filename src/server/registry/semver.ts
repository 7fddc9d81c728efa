/** Semver precedence (semver.org §11), enough to list versions in order. */
export function compareSemver(a: string, b: string): number {
  const [coreA, preA] = split(a)
  const [coreB, preB] = split(b)
  for (let i = 0; i < 3; i++) if (coreA[i] !== coreB[i]) return coreA[i] - coreB[i]
  if (preA === undefined || preB === undefined) return preA === preB ? 0 : preA === undefined ? 1 : -1
  const pa = preA.split('.')
  const pb = preB.split('.')
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    if (pa[i] === pb[i]) continue
    const na = /^\d+$/.test(pa[i])
    const nb = /^\d+$/.test(pb[i])
    if (na && nb) return Number(pa[i]) - Number(pb[i])
    if (na !== nb) return na ? -1 : 1
    return pa[i] < pb[i] ? -1 : 1
  }
  return pa.length - pb.length
}

function split(version: string): [number[], string | undefined] {
  const dash = version.indexOf('-')
  const core = dash < 0 ? version : version.slice(0, dash)
  return [core.split('.').map(Number), dash < 0 ? undefined : version.slice(dash + 1)]
}
