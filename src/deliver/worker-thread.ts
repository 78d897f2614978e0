import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'

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

interface Reply {
  readonly id: number
  readonly result?: unknown
  readonly error?: { readonly message: string; readonly code?: string }
}

/**
 * Request/response over a worker's message port. The worker is referenced only while a request is
 * pending, so an idle store does not keep the process alive, and a pending delivery does.
 */
export function workerRpc(worker: Worker): { call<T>(op: string, payload?: unknown): Promise<T>; readonly failed: Error | undefined } {
  let nextId = 1
  let failed: Error | undefined
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (err: Error) => void }>()
  const failAll = (err: Error): void => {
    failed = err
    for (const { reject } of pending.values()) reject(err)
    pending.clear()
  }
  worker.unref()
  worker.on('message', (reply: Reply) => {
    const request = pending.get(reply.id)
    if (!request) return
    pending.delete(reply.id)
    if (pending.size === 0) worker.unref()
    if (reply.error) request.reject(Object.assign(new Error(reply.error.message), { code: reply.error.code }))
    else request.resolve(reply.result)
  })
  worker.on('error', failAll)
  worker.on('exit', (code) => failAll(new Error(`authtrail: the embedded store's worker exited (code ${code})`)))
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
