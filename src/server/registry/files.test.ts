import { describe, expect, it } from 'vitest'
import { weightFile } from '../../../test/support/server'
import { createNodeDeps } from '../../runtime/node'
import { digestOf } from '../../weights'
import { ApiError } from '../errors'
import {
  attachFiles,
  checkFiles,
  fileChunkBytes,
  filesByVersion,
  maxFileBytes,
  maxFilesPerVersion,
  readVersionFile,
} from './files'
import { publishVersion } from './publish'

const png = (size: number, seed = 0) => {
  const bytes = new Uint8Array(size).map((_, i) => (i * 31 + seed) % 251)
  bytes.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
  return bytes
}
const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value))
const now = new Date('2026-01-01T00:00:00Z')

const refusal = async (promise: Promise<unknown>) => {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(ApiError)
  return error as ApiError
}

describe('checkFiles', () => {
  it('names each file by its kind and digest, sorted by name', async () => {
    const files = await checkFiles([
      { name: 'loss.png', bytes: png(100) },
      { name: 'analysis.json', bytes: json({ r2: 0.9 }) },
    ])
    expect(files.map(({ bytes: _, ...f }) => f)).toEqual([
      {
        name: 'analysis.json',
        mediaType: 'application/json',
        sizeBytes: 10,
        digest: await digestOf(json({ r2: 0.9 })),
      },
      { name: 'loss.png', mediaType: 'image/png', sizeBytes: 100, digest: await digestOf(png(100)) },
    ])
  })

  it.each([
    ['a name with a path', [{ name: '../loss.png', bytes: png(10) }], 'invalid_request', /not allowed/],
    ['the card as a file', [{ name: 'card.json', bytes: json({}) }], 'invalid_request', /not allowed/],
    ['HTML', [{ name: 'x.html', bytes: json({}) }], 'invalid_request', /publish plots and analyses as/],
    ['SVG', [{ name: 'x.svg', bytes: json({}) }], 'invalid_request', /publish plots and analyses as/],
    ['a PNG that is not one', [{ name: 'x.png', bytes: json({}) }], 'invalid_request', /not a PNG/],
    ['JSON that is not', [{ name: 'a.json', bytes: png(10) }], 'invalid_request', /not valid JSON/],
    [
      'a name twice',
      [
        { name: 'a.png', bytes: png(10) },
        { name: 'a.png', bytes: png(10) },
      ],
      'invalid_request',
      /twice/,
    ],
    ['a file too large', [{ name: 'a.png', bytes: png(maxFileBytes + 1) }], 'payload_too_large', /limit/],
    [
      'too many files',
      Array.from({ length: maxFilesPerVersion + 1 }, (_, i) => ({ name: `p${i}.png`, bytes: png(10) })),
      'payload_too_large',
      /at most/,
    ],
  ])('refuses %s', async (_, files, code, detail) => {
    const error = await refusal(checkFiles(files))
    expect(error.code).toBe(code)
    expect(error.detail).toMatch(detail)
  })
})

describe('a version with files', () => {
  const setup = async () => {
    const deps = createNodeDeps({ dataDir: ':memory:' })
    await publishVersion(deps.db, { name: 'plotted', version: '1.0.0', weights: weightFile(3) }, now)
    return deps
  }

  it('keeps a file larger than one row in chunks and reads it back byte for byte', async () => {
    const { db, sqlite, close } = await setup()
    const big = png(2 * fileChunkBytes + 12_345, 7)
    await attachFiles(db, 'plotted', '1.0.0', await checkFiles([{ name: 'big.png', bytes: big }]), now)
    const rows = sqlite.prepare('select length(bytes) as n from version_file_chunks order by chunk').all()
    expect(rows).toEqual([{ n: fileChunkBytes }, { n: fileChunkBytes }, { n: 12_345 }])
    const read = await readVersionFile(db, 'plotted', '1.0.0', 'big.png')
    expect(read?.info).toMatchObject({ mediaType: 'image/png', sizeBytes: big.length })
    expect(Buffer.compare(read!.bytes, big)).toBe(0)
    expect(await readVersionFile(db, 'plotted', '1.0.0', 'other.png')).toBeUndefined()
    close()
  })

  it('takes files once; the same files again change nothing, other files are a version_conflict', async () => {
    const { db, close } = await setup()
    const first = await checkFiles([{ name: 'loss.png', bytes: png(50) }])
    await attachFiles(db, 'plotted', '1.0.0', first, now)
    await attachFiles(db, 'plotted', '1.0.0', first, now)
    const other = await checkFiles([{ name: 'loss.png', bytes: png(50, 1) }])
    const error = await refusal(attachFiles(db, 'plotted', '1.0.0', other, now))
    expect(error.code).toBe('version_conflict')
    expect(error.detail).toMatch(/immutable/)
    const more = await checkFiles([
      { name: 'loss.png', bytes: png(50) },
      { name: 'extra.png', bytes: png(20) },
    ])
    expect((await refusal(attachFiles(db, 'plotted', '1.0.0', more, now))).code).toBe('version_conflict')
    expect((await filesByVersion(db, 'plotted')).get('1.0.0')?.map((f) => f.name)).toEqual(['loss.png'])
    close()
  })

  it('gives files to a version published without any when the same bytes are published with them', async () => {
    const { db, close } = await setup()
    const again = await publishVersion(
      db,
      {
        name: 'plotted',
        version: '1.0.0',
        weights: weightFile(3),
        files: [{ name: 'a.png', bytes: png(9) }],
      },
      now,
    )
    expect(again).toMatchObject({ created: false, files: ['a.png'] })
    expect((await filesByVersion(db, 'plotted')).get('1.0.0')?.map((f) => f.name)).toEqual(['a.png'])
    close()
  })
})
