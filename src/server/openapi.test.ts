import SwaggerParser from '@apidevtools/swagger-parser'
import type { OpenAPIV3_1 } from 'openapi-types'
import { describe, expect, it } from 'vitest'
import type { z } from 'zod'
import { useTestServer } from '../../test/support/server'
import {
  aliasSchema,
  apiKeySchema,
  createClientRequestSchema,
  createClientResponseSchema,
  createKeyResponseSchema,
  createSessionRequestSchema,
  healthSchema,
  jsonSessionStepRequestSchema,
  jsonSessionStepResponseSchema,
  jsonStepRequestSchema,
  jsonStepResponseSchema,
  moveAliasRequestSchema,
  optimizerDetailSchema,
  optimizerListSchema,
  publishVersionResponseSchema,
  resolveResponseSchema,
  sessionSchema,
  versionSchema,
} from '../contract'
import { problemSchema } from './openapi'
import { operationExamples } from './openapi-examples'

const s = useTestServer()
const document = async () => (await (await s.app.request('/openapi.json')).json()) as OpenAPIV3_1.Document

type Operation = OpenAPIV3_1.OperationObject & { 'x-codeSamples'?: { source: string }[] }
const operations = (doc: OpenAPIV3_1.Document): [string, Operation][] =>
  Object.entries(doc.paths ?? {}).flatMap(([path, item]) =>
    Object.entries(item ?? {})
      .filter(([method]) => ['get', 'put', 'post', 'delete', 'patch'].includes(method))
      .map(([method, op]) => [`${method.toUpperCase()} ${path}`, op as Operation] as [string, Operation]),
  )
const mediaExamples = (media: OpenAPIV3_1.MediaTypeObject): unknown[] =>
  media.example !== undefined
    ? [media.example]
    : Object.values(media.examples ?? {}).map((e) => (e as OpenAPIV3_1.ExampleObject).value)

// The contract's schema for each JSON example: [request, success response].
const contract: Record<string, [z.ZodType | undefined, z.ZodType | undefined]> = {
  'GET /healthz': [undefined, healthSchema],
  'GET /v1/optimizers': [undefined, optimizerListSchema],
  'GET /v1/optimizers/{name}': [undefined, optimizerDetailSchema],
  'GET /v1/resolve': [undefined, resolveResponseSchema],
  'POST /v1/step': [jsonStepRequestSchema, jsonStepResponseSchema],
  'POST /v1/sessions': [createSessionRequestSchema, sessionSchema],
  'GET /v1/sessions/{id}': [undefined, sessionSchema],
  'POST /v1/sessions/{id}/shards/{shard}/steps/{step}': [
    jsonSessionStepRequestSchema,
    jsonSessionStepResponseSchema,
  ],
  'POST /v1/admin/optimizers/{name}/versions': [undefined, publishVersionResponseSchema],
  'POST /v1/admin/optimizers/{name}/versions/{version}/deprecate': [undefined, versionSchema],
  'PUT /v1/admin/optimizers/{name}/aliases/{alias}': [moveAliasRequestSchema, aliasSchema],
  'POST /v1/admin/clients': [createClientRequestSchema, createClientResponseSchema],
  'POST /v1/admin/clients/{id}/keys': [undefined, createKeyResponseSchema],
  'DELETE /v1/admin/keys/{id}': [undefined, apiKeySchema],
}

describe('/openapi.json', () => {
  it('is a valid OpenAPI 3.1 document (@apidevtools/swagger-parser)', async () => {
    const doc = await document()
    const api = (await SwaggerParser.validate(structuredClone(doc) as never)) as OpenAPIV3_1.Document
    expect(api.openapi).toBe('3.1.0')
    expect(operations(doc).length).toBeGreaterThanOrEqual(18)
  })

  it('has an example for every operation, and only for operations that exist', async () => {
    const names = operations(await document()).map(([name]) => name)
    expect(Object.keys(operationExamples).sort()).toEqual([...names].sort())
  })

  it('gives every operation a request example: a curl command, every parameter, every JSON or form body', async () => {
    for (const [name, op] of operations(await document())) {
      expect(op['x-codeSamples']?.[0]?.source, name).toMatch(/^curl -X [A-Z]+ "\$L2O\//)
      expect(op['x-codeSamples']?.[0]?.source, name).not.toContain('<')
      for (const p of (op.parameters ?? []) as OpenAPIV3_1.ParameterObject[]) {
        const schema = p.schema as OpenAPIV3_1.SchemaObject | undefined
        expect(p.example ?? schema?.example, `${name} parameter ${p.name}`).toBeDefined()
      }
      const body = op.requestBody as OpenAPIV3_1.RequestBodyObject | undefined
      for (const [type, media] of Object.entries(body?.content ?? {})) {
        if (type === 'application/vnd.l2o.safetensors') continue // binary: its description says the layout
        expect(mediaExamples(media).length, `${name} ${type}`).toBeGreaterThan(0)
      }
    }
  })

  it('gives every answer with a body an example, a problem+json one for every error status', async () => {
    for (const [name, op] of operations(await document())) {
      const responses = Object.entries(op.responses ?? {}) as [string, OpenAPIV3_1.ResponseObject][]
      expect(
        responses.some(
          ([status, r]) =>
            status.startsWith('2') &&
            (r.content === undefined || Object.values(r.content).some((m) => mediaExamples(m).length > 0)),
        ),
        name,
      ).toBe(true)
      for (const [status, response] of responses.filter(([status]) => Number(status) >= 400)) {
        const example = response.content?.['application/problem+json']?.example
        expect(problemSchema.safeParse(example).success, `${name} ${status}`).toBe(true)
        expect((example as { status: number }).status, `${name} ${status}`).toBe(Number(status))
      }
    }
  })

  it("keeps every JSON example valid under the contract's own schema", async () => {
    const doc = await document()
    for (const [name, op] of operations(doc)) {
      const [request, response] = contract[name] ?? []
      const body = (op.requestBody as OpenAPIV3_1.RequestBodyObject | undefined)?.content['application/json']
      if (request !== undefined) {
        for (const example of mediaExamples(body!))
          expect(request.safeParse(example).error, name).toBeUndefined()
      }
      if (response !== undefined) {
        const success = Object.entries(op.responses ?? {}).find(([status]) => status.startsWith('2'))?.[1] as
          | OpenAPIV3_1.ResponseObject
          | undefined
        const example = success?.content?.['application/json']?.example
        expect(response.safeParse(example).error, name).toBeUndefined()
      }
    }
  })
})
