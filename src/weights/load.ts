/**
 * Weight files (DESIGN §3): a `model.safetensors` whose `__metadata__` has `format` = "l2o/1" and an
 * `architecture` JSON string, and exactly the tensors PyTorch's state_dict names for that
 * architecture, all F32 and finite. F16/BF16 weight files are refused rather than widened: the
 * design fixes weights to float32, and one version should have one byte form.
 */
import {
  type Architecture,
  architectureFormSchema,
  architectureJson,
  isExtended,
  lstmSpec,
  WEIGHTS_FORMAT,
  weightShapes,
} from '../contract'
import { type LstmWeights, lstmWeightsFromTensors, lstmWeightTensors } from '../core/lstm-weights'
import { decode, encode, SafetensorsError, type Tensor } from '../safetensors'

/** Stable reasons a weight file is refused. */
export type WeightsErrorCode =
  | 'invalid_file'
  | 'unsupported_format'
  | 'invalid_architecture'
  | 'invalid_weights'

/** The only error the weight loader throws; `cause` holds the SafetensorsError for 'invalid_file'. */
export class WeightsError extends Error {
  override readonly name = 'WeightsError'
  constructor(
    readonly code: WeightsErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}

const shapeText = (shape: readonly number[]): string =>
  `[${shape.slice(0, 8).join(', ')}${shape.length > 8 ? `, … (${shape.length} dims)` : ''}]`
const sameShape = (a: readonly number[], b: readonly number[]): boolean =>
  a.length === b.length && a.every((d, i) => d === b[i])

/** Parses `__metadata__.architecture`, or throws WeightsError 'invalid_architecture'. */
export function parseArchitecture(json: string): Architecture {
  let raw: unknown
  try {
    raw = JSON.parse(json)
  } catch {
    throw new WeightsError('invalid_architecture', 'metadata "architecture" is not valid JSON')
  }
  const parsed = architectureFormSchema(raw).safeParse(raw)
  if (!parsed.success) {
    const why = parsed.error.issues
      .slice(0, 5)
      .map((i) => `${i.path.length > 0 ? i.path.join('.') : 'architecture'}: ${i.message}`)
      .join('; ')
    throw new WeightsError('invalid_architecture', `metadata "architecture" is invalid: ${why}`)
  }
  return parsed.data
}

/**
 * Decodes a weight file into LSTM weights. The returned arrays are copies, independent of `bytes`.
 *
 * @throws WeightsError, and nothing else: 'invalid_file' (not safetensors), 'unsupported_format',
 *   'invalid_architecture', or 'invalid_weights' naming each missing, extra or misshaped tensor.
 */
export function decodeLstmWeights(bytes: Uint8Array): LstmWeights {
  let file: ReturnType<typeof decode>
  try {
    file = decode(bytes)
  } catch (error) {
    if (error instanceof SafetensorsError) {
      throw new WeightsError(
        'invalid_file',
        `not a valid safetensors file (${error.code}): ${error.message}`,
        {
          cause: error,
        },
      )
    }
    throw error
  }
  const format = file.metadata?.format
  if (format !== WEIGHTS_FORMAT) {
    const got = format === undefined ? 'no __metadata__.format' : `format ${JSON.stringify(format)}`
    throw new WeightsError(
      'unsupported_format',
      `expected __metadata__.format "${WEIGHTS_FORMAT}", got ${got}`,
    )
  }
  const archJson = file.metadata?.architecture
  if (archJson === undefined) throw new WeightsError('invalid_architecture', 'no __metadata__.architecture')
  const architecture = parseArchitecture(archJson)

  const values = checkTensors(architecture, file.tensors)
  return lstmWeightsFromTensors(architecture, (name) => values.get(name)!)
}

// Collects every problem (up to a few) so one error says all that is wrong with the file.
function checkTensors(arch: Architecture, tensors: ReadonlyMap<string, Tensor>): Map<string, Float32Array> {
  const expected = weightShapes(arch)
  const problems: string[] = []
  const values = new Map<string, Float32Array>()
  for (const [name, shape] of expected) {
    const t = tensors.get(name)
    if (t === undefined) {
      problems.push(`missing tensor "${name}" ${shapeText(shape)}`)
    } else if (t.dtype !== 'F32') {
      problems.push(`tensor "${name}" is ${t.dtype}, expected F32`)
    } else if (!sameShape(t.shape, shape)) {
      problems.push(`tensor "${name}" has shape ${shapeText(t.shape)}, expected ${shapeText(shape)}`)
    } else {
      const bad = t.data.findIndex((v) => !Number.isFinite(v))
      if (bad >= 0) problems.push(`tensor "${name}" has a non-finite value (${t.data[bad]}) at index ${bad}`)
      else values.set(name, t.data.slice())
    }
  }
  for (const name of tensors.keys()) {
    if (!expected.has(name)) {
      problems.push(`unexpected tensor ${JSON.stringify(name.slice(0, 80))} (not part of the architecture)`)
    }
  }
  if (problems.length > 0) {
    const shown = problems.slice(0, 8).join('; ')
    const more = problems.length > 8 ? `; and ${problems.length - 8} more` : ''
    throw new WeightsError(
      'invalid_weights',
      `weights do not match architecture L=${arch.layers} H=${arch.hidden} ${describeKinds(arch)}: ${shown}${more}`,
    )
  }
  return values
}

/** The kinds of an architecture in a few words, for messages: `log-sign`, `moments, elu 8, tanh`. */
function describeKinds(arch: Architecture): string {
  const spec = lstmSpec(arch)
  if (!isExtended(arch)) return spec.features.kind
  const layer = spec.inputLayer === null ? [] : [`${spec.inputLayer.activation} ${spec.inputLayer.size}`]
  return [spec.features.kind, ...layer, spec.output.kind].join(', ')
}

/**
 * Encodes LSTM weights as a weight file: state_dict tensor names, F32, and metadata
 * `{ format: "l2o/1", architecture: <compact JSON, sorted keys> }`. Deterministic: equal weights give
 * equal bytes, hence equal digests.
 *
 * @throws WeightsError 'invalid_architecture' or 'invalid_weights' when weights and architecture disagree.
 */
export function encodeLstmWeights(weights: LstmWeights): Uint8Array {
  const architecture = parseArchitecture(JSON.stringify(weights.architecture))
  const cells = weights.cells ?? []
  if (cells.length !== architecture.layers) {
    throw new WeightsError(
      'invalid_weights',
      `${cells.length} cells for an architecture of ${architecture.layers} layers`,
    )
  }
  const shapes = weightShapes(architecture)
  const tensors = new Map<string, Tensor>()
  for (const [name, data] of lstmWeightTensors({ ...weights, architecture, cells })) {
    tensors.set(name, { dtype: 'F32', shape: shapes.get(name)!, data })
  }
  // Check lengths and finiteness with the reader's own rules, so what we write we can read.
  for (const [name, t] of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1)
    if (!(t.data instanceof Float32Array) || t.data.length !== n) {
      const got = t.data instanceof Float32Array ? `${t.data.length} floats` : 'not a Float32Array'
      throw new WeightsError(
        'invalid_weights',
        `tensor "${name}" ${shapeText(t.shape)} needs ${n} floats, got ${got}`,
      )
    }
  }
  checkTensors(architecture, tensors)
  return encode(tensors, { format: WEIGHTS_FORMAT, architecture: architectureJson(architecture) })
}

/** The version digest of a weight file (DESIGN §3): "sha256:" + lowercase hex SHA-256 of its bytes. */
export async function digestOf(bytes: Uint8Array): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))
  let hex = ''
  for (const b of hash) hex += b.toString(16).padStart(2, '0')
  return `sha256:${hex}`
}

/** Decodes a weight file and computes its digest. @throws WeightsError */
export async function readWeightFile(bytes: Uint8Array): Promise<{ weights: LstmWeights; digest: string }> {
  const weights = decodeLstmWeights(bytes)
  return { weights, digest: await digestOf(bytes) }
}
