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

/** Lowercase hex SHA-256 of a UTF-8 string. */
export async function sha256Hex(text: string): Promise<string> {
  return hex(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text))))
}

/** Lowercase hex of bytes. */
export const toHex = hex
