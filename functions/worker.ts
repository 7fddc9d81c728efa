// wrangler.toml `main`: the Worker is the app (src/runtime/workers.ts builds its deps from env), and
// the session-shards Durable Object class its binding names.
import { app, SessionShards } from '../src/runtime/workers'

export { SessionShards }
export default app
