import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import { ConfigError } from '../config/load-config.js'
import { DeliveryError } from '../types.js'

/**
 * Starts a worker from a module next to the caller. Compiled code runs the `.js` file directly; when
 * authtrail runs from its TypeScript sources (tests, `tsx`), workers do not inherit the TypeScript
 * loader, so the module is loaded through tsx's `tsImport` instead.
 */
export function startWorker(moduleUrl: URL, workerData: unknown): Worker {
  if (moduleUrl.pathname.endsWith('.ts')) {
    const href = JSON.stringify(moduleUrl.href)
    const tsx = JSON.stringify(tsxApiUrl())
    return new Worker(`import(${tsx}).then(({ tsImport }) => tsImport(${href}, ${href}))`, { eval: true, workerData })
  }
  return new Worker(moduleUrl, { workerData })
}

/**
 * The ESM entry of tsx's API, resolved from authtrail: an eval'd worker would look for tsx from the
 * working directory instead. Read from tsx's export map, since require.resolve picks the CommonJS file.
 */
function tsxApiUrl(): string {
  const manifest = createRequire(import.meta.url).resolve('tsx/package.json')
  const exports = JSON.parse(readFileSync(manifest, 'utf8')).exports as Record<string, { import: { default: string } }>
  return pathToFileURL(path.join(path.dirname(manifest), exports['./esm/api']!.import.default)).href
}

/** Resolves a sibling module of `base`, with the extension `base` itself has (`.ts` in sources, `.js` built). */
export function siblingModule(base: string, name: string): URL {
  const extension = base.endsWith('.ts') ? '.ts' : '.js'
  return new URL(`./${name}${extension}`, base)
}

/**
 * An error as it crosses the thread boundary. The fields that tell an outage from a refusal
 * (`isUnavailable` in sql-client.ts) travel with it, and a {@link DeliveryError} keeps the events it names.
 */
export interface WireError {
  readonly message: string
  /**
   * `ConfigError` is rebuilt as one, so that a configuration found wrong in the thread reads as such, and
   * so are the built-in errors that mean a bug rather than an outage (see isUnavailable).
   */
  readonly name?: string
  readonly code?: unknown
  readonly sqlState?: unknown
  readonly errno?: unknown
  readonly fatal?: unknown
  readonly permanent?: unknown
  readonly failed?: ReadonlyArray<readonly [string, WireError]>
}

const BUILT_IN_ERRORS = [TypeError, RangeError, SyntaxError, ReferenceError] as const

/** For the worker's side: what of an error to send. */
export function toWireError(err: unknown): WireError {
  if (!(err instanceof Error)) return { message: String(err) }
  const { code, sqlState, errno, fatal, permanent } = err as Error & Record<string, unknown>
  return {
    message: err.message,
    ...(err instanceof ConfigError || BUILT_IN_ERRORS.some((type) => err.constructor === type) ? { name: err.name } : {}),
    ...(code !== undefined ? { code } : {}),
    ...(sqlState !== undefined ? { sqlState } : {}),
    ...(errno !== undefined ? { errno } : {}),
    ...(fatal !== undefined ? { fatal } : {}),
    ...(permanent !== undefined ? { permanent } : {}),
    ...(err instanceof DeliveryError ? { failed: [...err.failed].map(([id, e]) => [id, toWireError(e)] as const) } : {}),
  }
}

/** For the caller's side: the error again, with the fields that matter. */
export function fromWireError(wire: WireError): Error {
  const { message, failed, name, ...fields } = wire
  const err = failed
    ? new DeliveryError(message, new Map(failed.map(([id, e]) => [id, fromWireError(e)])))
    : name === 'ConfigError' ? new ConfigError(message) : new (BUILT_IN_ERRORS.find((type) => type.name === name) ?? Error)(message)
  return Object.assign(err, fields)
}

interface Reply {
  readonly id: number
  readonly result?: unknown
  readonly error?: WireError
}

/** A message a worker sends on its own: a line for the app's log. */
export interface WorkerLog {
  readonly log: 'info' | 'warn' | 'error'
  readonly message: string
}

/**
 * Request/response over a worker's message port. The worker is referenced only while a request is
 * pending, so an idle store does not keep the process alive, and a pending delivery does.
 */
export function workerRpc(worker: Worker, what: string, onLog?: (log: WorkerLog) => void): { call<T>(op: string, payload?: unknown): Promise<T>; readonly failed: Error | undefined } {
  let nextId = 1
  let failed: Error | undefined
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (err: Error) => void }>()
  const failAll = (err: Error): void => {
    // The first failure is the cause (an uncaught error); the exit that follows it says less.
    failed ??= err
    for (const { reject } of pending.values()) reject(err)
    pending.clear()
  }
  worker.unref()
  worker.on('message', (message: Reply | WorkerLog) => {
    if ('log' in message) return onLog?.(message)
    const request = pending.get(message.id)
    if (!request) return
    pending.delete(message.id)
    if (pending.size === 0) worker.unref()
    if (message.error) request.reject(fromWireError(message.error))
    else request.resolve(message.result)
  })
  worker.on('exit', (code) => failAll(new Error(`authtrail: ${what}'s worker thread exited (code ${code})`)))
  // An uncaught error in the thread: its message is what the app's log should show.
  worker.on('error', (err) => failAll(Object.assign(new Error(`authtrail: ${what}'s worker thread failed: ${err.message}`), { code: 'AUTHTRAIL_THREAD' })))
  return {
    call<T>(op: string, payload?: unknown): Promise<T> {
      if (failed) return Promise.reject(failed)
      const id = nextId++
      worker.ref()
      return new Promise<T>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (value: unknown) => void, reject })
        worker.postMessage({ id, op, payload })
      })
    },
    get failed() {
      return failed
    },
  }
}
