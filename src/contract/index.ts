/** The API contract: schemas, wire constants, references and problem codes. Depends on zod only. */
export * from './architecture'
export * from './problems'
export * from './reference'
export * from './schemas'
export * from './wire'
