/**
 * How the benches and the reliability suite start the Node server exactly as `npm start` does:
 * its node arguments, read from package.json (so they cannot drift from it), and the flags that
 * $L2O_SERVER_NODE_ARGS adds (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`). Run from the repo root.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'

const root = path.resolve(import.meta.dirname, '../..')

/** npm start's node arguments (package.json "start", less `node`), the script path relative to the root. */
export function startArguments(): string[] {
  const script = (
    JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: { start: string } }
  ).scripts.start
  const [node, ...args] = script.split(/\s+/)
  if (node !== 'node') throw new Error(`npm start does not run node: ${script}`)
  return args
}

/** The node flags $L2O_SERVER_NODE_ARGS adds to a server started for a bench or a test. */
export function extraNodeArguments(): string[] {
  return process.env.L2O_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? []
}
