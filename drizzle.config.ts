import { defineConfig } from 'drizzle-kit'

// `npm run db:generate -- --name <verb_noun>` writes migrations/NNNN_<verb_noun>.sql from src/db/schema.ts.
export default defineConfig({ dialect: 'sqlite', schema: './src/db/schema.ts', out: './migrations' })
