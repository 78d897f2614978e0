import net from 'node:net'
import type { AuditFilter, AuditRow } from '../../review/audit-query.js'

/**
 * Asks the process holding an embedded store for rows, over the unix socket its lock file names
 * (served by pglite-worker.ts). The CLI uses it so it never opens a directory a running app holds.
 */
export function queryThroughSocket(socket: string, filter: AuditFilter, timeoutMs = 10_000): Promise<AuditRow[]> {
  return new Promise((resolve, reject) => {
    const connection = net.connect(socket)
    let reply = ''
    connection.setEncoding('utf8')
    connection.setTimeout(timeoutMs, () => connection.destroy(new Error(`no answer within ${timeoutMs} ms`)))
    connection.on('connect', () => connection.end(JSON.stringify({ op: 'query', filter }) + '\n'))
    connection.on('data', (chunk: string) => {
      reply += chunk
    })
    connection.on('error', reject)
    connection.on('end', () => {
      try {
        const parsed = JSON.parse(reply) as { rows?: AuditRow[]; error?: string }
        if (parsed.error !== undefined) reject(new Error(parsed.error))
        else resolve(parsed.rows ?? [])
      } catch {
        reject(new Error('the store closed the connection without an answer'))
      }
    })
  })
}
