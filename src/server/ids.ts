/** Random identifiers and secrets, from the deps' random source so tests can pin them. */

const hex = (bytes: Uint8Array): string => {
  let out = ''
  for (const b of bytes) out += b.toString(16).padStart(2, '0')
  return out
}

/** `<prefix>_<hex>` with `byteLength` random bytes, e.g. `ses_3f9a…`. */
export function randomId(randomBytes: (n: number) => Uint8Array, prefix: string, byteLength: number): string {
  return `${prefix}_${hex(randomBytes(byteLength))}`
}

/** Lowercase hex SHA-256 of a UTF-8 string, or of bytes. */
export async function sha256Hex(data: string | Uint8Array): Promise<string> {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data
  return hex(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)))
}

/** Lowercase hex of bytes. */
export const toHex = hex
