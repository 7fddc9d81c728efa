// wrangler.toml `main`: the Worker is the app (src/runtime/workers.ts builds its deps from env).
import { app } from '../src/runtime/workers'

export default app
