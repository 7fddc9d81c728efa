import { clip } from './problems'

/**
 * Optimizer references (DESIGN §4): `name` (= `name@stable`), `name@1.2.0`, `name@<alias>`,
 * `name@sha256:<64 hex>`. Parsed the same way by the server and the SDKs.
 */
export const namePattern = /^[a-z][a-z0-9-]{0,63}$/
export const semverPattern =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$/
export const aliasPattern = /^[a-z][a-z0-9-]{0,31}$/
export const digestPattern = /^sha256:[0-9a-f]{64}$/

/** The alias a bare name means. */
export const defaultAlias = 'stable'

/** A parsed reference: exactly one of version, alias or digest is set. */
export type Reference =
  | { name: string; kind: 'version'; version: string }
  | { name: string; kind: 'alias'; alias: string }
  | { name: string; kind: 'digest'; digest: string }

/** Parses a reference, or returns an error message that says what a valid one looks like. */
export function parseReference(text: string): { ok: true; ref: Reference } | { ok: false; message: string } {
  const at = text.indexOf('@')
  const name = at < 0 ? text : text.slice(0, at)
  const rest = at < 0 ? defaultAlias : text.slice(at + 1)
  if (!namePattern.test(name)) {
    return {
      ok: false,
      message: `invalid optimizer name '${clip(name)}': use lowercase letters, digits and '-'`,
    }
  }
  if (rest.startsWith('sha256:')) {
    return digestPattern.test(rest)
      ? { ok: true, ref: { name, kind: 'digest', digest: rest } }
      : {
          ok: false,
          message: `invalid digest '${clip(rest, 80)}': expected sha256: followed by 64 lowercase hex digits`,
        }
  }
  if (semverPattern.test(rest)) return { ok: true, ref: { name, kind: 'version', version: rest } }
  if (aliasPattern.test(rest)) return { ok: true, ref: { name, kind: 'alias', alias: rest } }
  return {
    ok: false,
    message: `invalid reference '${clip(text)}': use name, name@1.2.0, name@alias or name@sha256:<hex>`,
  }
}

/** Formats a reference back into its canonical text form. */
export function formatReference(ref: Reference): string {
  const suffix = ref.kind === 'version' ? ref.version : ref.kind === 'alias' ? ref.alias : ref.digest
  return `${ref.name}@${suffix}`
}
