/**
 * Publishing a learned optimizer version from the bytes of its weight file (DESIGN §3–4): shared by
 * the admin route, the Node runtime's seeding of weights/ and the Workers seed script.
 */
import { and, eq } from 'drizzle-orm'
import {
  architectureJson,
  clip,
  lstmSpec,
  maxRowBytes,
  namePattern,
  type PublishVersionResponse,
  semverPattern,
} from '../../contract'
import type { LstmWeights } from '../../core'
import { isBaseline } from '../../core'
import type { Db } from '../../db/db'
import { optimizers, versions } from '../../db/schema'
import { decodeLstmWeights, digestOf, WeightsError } from '../../weights'
import { ApiError } from '../errors'
import { isSettableAlias, moveAlias } from './aliases'
import { attachFiles, checkFiles, type FileInput, filesByVersion } from './files'

/** What a publish needs: the weight file's bytes and, optionally, its card. */
export interface PublishInput {
  name: string
  version: string
  /** model.safetensors, byte for byte. */
  weights: Uint8Array
  /** card.json, parsed (any JSON object), or its text. */
  card?: unknown
  /** Plots and analysis files to keep with the version (files.ts says which kinds and sizes). */
  files?: FileInput[]
  /** Shown in listings (the newest version's wins); taken from card.description when absent. */
  description?: string
  /**
   * Aliases to point at this version when it is created (besides `latest`), e.g. `stable` from a
   * shipped weights/<name>/aliases.json. A version already present moves nothing, so an alias an
   * admin has moved since stays where it is.
   */
  aliases?: string[]
}

/** Largest card.json accepted, in bytes of JSON. */
export const maxCardBytes = 256 * 1024

// Room left in a version row for everything but the weights and the card.
const rowMarginBytes = 16 * 1024

/**
 * Validates and stores a version with its files, then points `latest` and the input's `aliases` at it, and
 * `stable` too when the name has none yet (and the version is not a pre-release). The same bytes again create nothing
 * (`created: false`); the same name@version with other bytes is a 409 version_conflict.
 *
 * @throws ApiError: invalid_request, invalid_weights, payload_too_large, version_conflict.
 */
export async function publishVersion(
  db: Db,
  input: PublishInput,
  now: Date,
): Promise<PublishVersionResponse> {
  const { name, version, weights } = input
  if (!namePattern.test(name)) {
    throw new ApiError(
      'invalid_request',
      `invalid optimizer name '${clip(name)}': use lowercase letters, digits and '-'`,
    )
  }
  if (isBaseline(name)) {
    throw new ApiError('invalid_request', `'${name}' is a built-in baseline; publish under another name`)
  }
  if (!semverPattern.test(version)) {
    throw new ApiError('invalid_request', `invalid version '${clip(version)}': use semver, e.g. 1.0.0`)
  }
  const bad = input.aliases?.find((alias) => !isSettableAlias(alias))
  if (bad !== undefined) {
    throw new ApiError(
      'invalid_request',
      `invalid alias '${clip(bad)}': use lowercase letters, digits and '-', not 'latest'`,
    )
  }
  const cardText = cardToText(input.card, name, version)
  const files = await checkFiles(input.files ?? [])
  const fileNames = files.map((f) => f.name)
  if (weights.byteLength + (cardText?.length ?? 0) + rowMarginBytes > maxRowBytes) {
    throw new ApiError(
      'payload_too_large',
      `the weight file (${weights.byteLength} bytes) and card must fit one ${maxRowBytes}-byte row; publish a smaller model`,
    )
  }
  let architecture: string
  try {
    const decoded = decodeLstmWeights(weights)
    assertBoundedUpdates(decoded)
    architecture = architectureJson(decoded.architecture)
  } catch (error) {
    if (error instanceof WeightsError)
      throw new ApiError('invalid_weights', error.message, { reason: error.code })
    throw error
  }
  const digest = await digestOf(weights)
  const cardDigest = cardText === null ? undefined : (JSON.parse(cardText) as Record<string, unknown>).digest
  if (cardDigest !== undefined && cardDigest !== digest) {
    throw new ApiError(
      'invalid_request',
      `card.digest is ${JSON.stringify(cardDigest)} but the uploaded file's digest is ${digest}; upload the file the card describes`,
    )
  }

  const sameVersion = await db
    .select({ digest: versions.digest })
    .from(versions)
    .where(and(eq(versions.name, name), eq(versions.version, version)))
    .get()
  if (sameVersion !== undefined) {
    if (sameVersion.digest === digest) {
      await attachFiles(db, name, version, files, now)
      return { name, version, digest, created: false, files: fileNames }
    }
    throw new ApiError(
      'version_conflict',
      `${name}@${version} exists with digest ${sameVersion.digest}; versions are immutable, publish a new version number`,
      { existingDigest: sameVersion.digest },
    )
  }
  const sameBytes = await db
    .select({ version: versions.version })
    .from(versions)
    .where(and(eq(versions.name, name), eq(versions.digest, digest)))
    .get()
  if (sameBytes !== undefined) {
    const stored = (await filesByVersion(db, name)).get(sameBytes.version) ?? []
    return { name, version: sameBytes.version, digest, created: false, files: stored.map((f) => f.name) }
  }

  const at = now.toISOString()
  const description = input.description ?? cardDescription(cardText) ?? ''
  await db.insert(optimizers).values({ name, description, createdAt: at }).onConflictDoNothing()
  const inserted = await db
    .insert(versions)
    .values({
      name,
      version,
      digest,
      weights,
      sizeBytes: weights.byteLength,
      architecture,
      card: cardText,
      status: 'active',
      createdAt: at,
    })
    .onConflictDoNothing()
    .returning({ version: versions.version })
  // A concurrent publish of the same version won the race: answer as if it came first.
  if (inserted.length === 0) return publishVersion(db, input, now)
  await attachFiles(db, name, version, files, now)
  // The name's description follows the newest version that has one.
  if (description !== '') await db.update(optimizers).set({ description }).where(eq(optimizers.name, name))

  await moveAlias(db, { name, alias: 'latest', version, digest }, now)
  for (const alias of input.aliases ?? []) await moveAlias(db, { name, alias, version, digest }, now)
  if (!version.includes('-') && !input.aliases?.includes('stable')) {
    await moveAlias(db, { name, alias: 'stable', version, digest }, now, { onlyIfAbsent: true })
  }
  return { name, version, digest, created: true, files: fileNames }
}

/** Largest |update| a published optimizer may produce for any finite input (and state). */
export const maxUpdateMagnitude = 1e6

/**
 * Refuses (WeightsError 'invalid_weights') weights whose updates can be non-finite or absurd for
 * finite inputs. The LSTM's last h lies in [−1, 1] whatever the input (h = o·tanh(c)), so the
 * output transform alone bounds the update; each kind says how. The weights themselves are finite
 * (the loader checks).
 */
export function assertBoundedUpdates(weights: LstmWeights): void {
  const output = lstmSpec(weights.architecture).output
  // Σ|head.weight| + |head.bias|: the head's value y is at most this (h ∈ [−1, 1]).
  let sum = Math.abs(weights.head.bias[0])
  for (const w of weights.head.weight) sum += Math.abs(w)
  let bound: number
  let how: string
  switch (output.kind) {
    case 'linear': {
      // update = scale · (W_out·h + b_out): at most |scale| · (Σ|W_out| + |b_out|). The tensors
      // are uploaded as fround(scale · w), so each of those must be a finite float32 too.
      bound = Math.abs(output.scale) * sum
      const folded = [...weights.head.weight, weights.head.bias[0]].map((w) => Math.fround(output.scale * w))
      if (!folded.every(Number.isFinite)) bound = Number.POSITIVE_INFINITY
      how = `|outputScale| · (Σ|head.weight| + |head.bias|) = ${bound}`
      break
    }
    case 'tanh': {
      // update = scale · tanh(W_out·h + b_out): at most |scale|, provided the head's value is a
      // number (a float32 sum of terms beyond its range could be ∞ − ∞).
      bound = sum <= 3.4e38 ? Math.abs(output.scale) : Number.POSITIVE_INFINITY
      how = `|outputScale| = ${Math.abs(output.scale)} (Σ|head.weight| + |head.bias| = ${sum})`
      break
    }
    case 'tanh-rms': {
      // update = scale · tanh(y) · r'^power grows with the gradients' RMS r' by design, so it is
      // bounded relative to them: |scale| at r' = 1, and |scale| · 3.4e38^power at the largest
      // float32 gradient (a float32: the architecture schema refuses a record where it is not),
      // both times e^cap with a `gain` (its multiplier lies in [e^−cap, e^cap]).
      // Bound it where gradients have unit scale, with the head's value a number as for `tanh`.
      const gain = Math.exp(output.gain?.cap ?? 0)
      const worst = Math.abs(output.scale) * gain * 3.4028234663852886e38 ** output.power
      bound = sum <= 3.4e38 ? Math.abs(output.scale) * gain : Number.POSITIVE_INFINITY
      how = `|outputScale|${output.gain === undefined ? '' : ` · e^${output.gain.cap}`} · r'^${output.power} = ${Math.abs(output.scale) * gain} at unit gradient RMS, ${worst} at the largest float32 gradient`
      break
    }
    default: {
      const unknown: never = output
      throw new WeightsError('invalid_weights', `no update bound for output ${JSON.stringify(unknown)}`)
    }
  }
  if (!(bound <= maxUpdateMagnitude)) {
    throw new WeightsError(
      'invalid_weights',
      `updates are bounded only by ${how}, above ${maxUpdateMagnitude}: this optimizer's outputs can overflow (check outputScale)`,
    )
  }
}

function cardToText(card: unknown, name: string, version: string): string | null {
  if (card === undefined || card === null) return null
  let parsed: unknown = card
  if (typeof card === 'string') {
    try {
      parsed = JSON.parse(card)
    } catch {
      throw new ApiError('invalid_request', 'card is not valid JSON; send card.json as published')
    }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ApiError('invalid_request', 'card must be a JSON object (card.json)')
  }
  const fields = parsed as Record<string, unknown>
  for (const [key, expected] of [
    ['name', name],
    ['version', version],
  ] as const) {
    if (fields[key] !== undefined && fields[key] !== expected) {
      throw new ApiError(
        'invalid_request',
        `card.${key} is ${JSON.stringify(fields[key])} but the upload is ${name}@${version}; publish the card that belongs to this file`,
      )
    }
  }
  const text = JSON.stringify(parsed)
  if (text.length > maxCardBytes) {
    throw new ApiError('payload_too_large', `card is ${text.length} bytes; the limit is ${maxCardBytes}`)
  }
  return text
}

function cardDescription(cardText: string | null): string | undefined {
  if (cardText === null) return undefined
  const description = (JSON.parse(cardText) as Record<string, unknown>).description
  return typeof description === 'string' ? description.slice(0, 500) : undefined
}
