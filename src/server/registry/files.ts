/**
 * Files published with a version: its plots and analysis (PNG, JSON, …). Immutable like the version
 * (DESIGN §4): a version's files are fixed by the first publish that brings any. Each file is split
 * into chunks of at most fileChunkBytes, so no row passes maxRowBytes on D1 or SQLite.
 */
import { and, asc, eq } from 'drizzle-orm'
import { maxRowBytes, type VersionFile } from '../../contract'
import type { Db } from '../../db/db'
import { versionFileChunks, versionFiles } from '../../db/schema'
import { digestOf } from '../../weights'
import { ApiError } from '../errors'

/** A file as uploaded: its name and bytes. */
export interface FileInput {
  name: string
  bytes: Uint8Array
}

/** A file checked and ready to store. */
export interface CheckedFile extends VersionFile {
  bytes: Uint8Array
}

/** Bytes of one chunk row: half a row, so the row's keys always fit beside it. */
export const fileChunkBytes = maxRowBytes / 2
/** Largest file accepted. */
export const maxFileBytes = 4 * 1024 * 1024
/** Most files one version may have, and their largest total size. */
export const maxFilesPerVersion = 16
export const maxFilesBytes = 8 * 1024 * 1024

// What may be published, by extension. No HTML or SVG: the files are served from the API's origin.
const mediaTypes: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
  json: 'application/json',
  csv: 'text/csv; charset=utf-8',
  txt: 'text/plain; charset=utf-8',
  md: 'text/markdown; charset=utf-8',
}
const fileNamePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/
// These are the version's own fields, not its files.
const reservedNames = new Set(['card.json', 'model.safetensors'])
const pngSignature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]

/** The media type a file name maps to, or undefined when that kind of file is not accepted. */
export function mediaTypeOfFile(name: string): string | undefined {
  const dot = name.lastIndexOf('.')
  return dot < 0 ? undefined : mediaTypes[name.slice(dot + 1).toLowerCase()]
}

/**
 * Validates uploaded files (names, kinds, sizes, PNG signature, JSON syntax) and computes digests.
 *
 * @throws ApiError invalid_request or payload_too_large, saying which file and what to do.
 */
export async function checkFiles(files: readonly FileInput[]): Promise<CheckedFile[]> {
  if (files.length > maxFilesPerVersion) {
    throw new ApiError(
      'payload_too_large',
      `${files.length} files; a version may have at most ${maxFilesPerVersion}`,
    )
  }
  const total = files.reduce((sum, f) => sum + f.bytes.byteLength, 0)
  if (total > maxFilesBytes) {
    throw new ApiError(
      'payload_too_large',
      `the files add up to ${total} bytes; the limit is ${maxFilesBytes}`,
    )
  }
  const seen = new Set<string>()
  const checked: CheckedFile[] = []
  for (const { name, bytes } of files) {
    const shown = JSON.stringify(name.slice(0, 100))
    if (!fileNamePattern.test(name) || reservedNames.has(name)) {
      throw new ApiError(
        'invalid_request',
        `file name ${shown} is not allowed: use letters, digits, '.', '_' and '-' (not card.json or model.safetensors)`,
      )
    }
    if (seen.has(name)) throw new ApiError('invalid_request', `file ${shown} is sent twice`)
    seen.add(name)
    const mediaType = mediaTypeOfFile(name)
    if (mediaType === undefined) {
      throw new ApiError(
        'invalid_request',
        `file ${shown}: publish plots and analyses as ${Object.keys(mediaTypes).join(', ')}`,
      )
    }
    if (bytes.byteLength > maxFileBytes) {
      throw new ApiError(
        'payload_too_large',
        `file ${shown} is ${bytes.byteLength} bytes; the limit is ${maxFileBytes}`,
      )
    }
    if (mediaType === 'image/png' && !pngSignature.every((b, i) => bytes[i] === b)) {
      throw new ApiError('invalid_request', `file ${shown} is not a PNG image`)
    }
    if (mediaType === 'application/json') {
      try {
        JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes))
      } catch {
        throw new ApiError('invalid_request', `file ${shown} is not valid JSON (UTF-8)`)
      }
    }
    checked.push({ name, mediaType, sizeBytes: bytes.byteLength, digest: await digestOf(bytes), bytes })
  }
  return checked.sort((a, b) => a.name.localeCompare(b.name))
}

/** The files of every version of `name` (each list sorted by file name), keyed by version. */
export async function filesByVersion(db: Db, name: string): Promise<Map<string, VersionFile[]>> {
  const rows = await db
    .select()
    .from(versionFiles)
    .where(eq(versionFiles.name, name))
    .orderBy(asc(versionFiles.file))
  const out = new Map<string, VersionFile[]>()
  for (const r of rows) {
    const list = out.get(r.version) ?? []
    list.push({ name: r.file, mediaType: r.mediaType, sizeBytes: r.sizeBytes, digest: r.digest })
    out.set(r.version, list)
  }
  return out
}

/**
 * Gives a version its files. A version that has none takes them (this is how a version published
 * before it had files gets them once); one that has files keeps them, and only the same files again
 * are accepted.
 *
 * @throws ApiError version_conflict when the version already has other files.
 */
export async function attachFiles(
  db: Db,
  name: string,
  version: string,
  files: readonly CheckedFile[],
  now: Date,
): Promise<void> {
  if (files.length === 0) return
  const existing = (await filesByVersion(db, name)).get(version) ?? []
  if (existing.length > 0) {
    const same =
      existing.length === files.length &&
      existing.every((e, i) => e.name === files[i].name && e.digest === files[i].digest)
    if (same) return
    throw new ApiError(
      'version_conflict',
      `${name}@${version} already has files (${existing.map((f) => f.name).join(', ')}); a version's files are immutable, publish a new version number`,
    )
  }
  const at = now.toISOString()
  for (const f of files) {
    const chunks = Math.max(1, Math.ceil(f.bytes.byteLength / fileChunkBytes))
    const inserted = await db
      .insert(versionFiles)
      .values({
        name,
        version,
        file: f.name,
        mediaType: f.mediaType,
        sizeBytes: f.sizeBytes,
        digest: f.digest,
        chunks,
        createdAt: at,
      })
      .onConflictDoNothing()
      .returning({ file: versionFiles.file })
    // A concurrent publish stored this file first; its chunks are its own.
    if (inserted.length === 0) continue
    for (let chunk = 0; chunk < chunks; chunk++) {
      const bytes = f.bytes.subarray(chunk * fileChunkBytes, (chunk + 1) * fileChunkBytes)
      await db.insert(versionFileChunks).values({ name, version, file: f.name, chunk, bytes })
    }
  }
}

/** One file of a version with its bytes, or undefined when there is no such file. */
export async function readVersionFile(
  db: Db,
  name: string,
  version: string,
  file: string,
): Promise<{ info: VersionFile; bytes: Uint8Array } | undefined> {
  const where = and(
    eq(versionFiles.name, name),
    eq(versionFiles.version, version),
    eq(versionFiles.file, file),
  )
  const row = await db.select().from(versionFiles).where(where).get()
  if (row === undefined) return undefined
  const chunks = await db
    .select({ chunk: versionFileChunks.chunk, bytes: versionFileChunks.bytes })
    .from(versionFileChunks)
    .where(
      and(
        eq(versionFileChunks.name, name),
        eq(versionFileChunks.version, version),
        eq(versionFileChunks.file, file),
      ),
    )
    .orderBy(asc(versionFileChunks.chunk))
  const bytes = new Uint8Array(row.sizeBytes)
  let offset = 0
  for (const c of chunks) {
    bytes.set(c.bytes, offset)
    offset += c.bytes.byteLength
  }
  if (chunks.length !== row.chunks || offset !== row.sizeBytes) {
    throw new Error(`${name}@${version} file ${file}: stored chunks do not add up to its size`)
  }
  return {
    info: { name: row.file, mediaType: row.mediaType, sizeBytes: row.sizeBytes, digest: row.digest },
    bytes,
  }
}
