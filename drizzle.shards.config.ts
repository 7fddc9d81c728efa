import { defineConfig } from 'drizzle-kit'

// `npm run db:generate:shards -- --name <verb_noun>` writes shard-migrations/NNNN_<verb_noun>.sql and
// migrations.js (which the session-shards Durable Object imports and applies) from src/db/shard-schema.ts.
export default defineConfig({
  dialect: 'sqlite',
  driver: 'durable-sqlite',
  schema: './src/db/shard-schema.ts',
  out: './shard-migrations',
})
