import net from 'node:net'

/**
 * Sends one request to the process holding an embedded store, over the unix socket its lock file names
 * (served by pglite-database.ts; the requests are src/review/store-requests.ts), and resolves to the reply.
 * The CLI uses it so it never opens a directory a running app holds.
 */
export function askThroughSocket<Reply>(socket: string, request: unknown, timeoutMs = 10_000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const connection = net.connect(socket)
    let reply = ''
    connection.setEncoding('utf8')
    connection.setTimeout(timeoutMs, () => connection.destroy(new Error(`no answer within ${timeoutMs} ms`)))
    connection.on('connect', () => connection.end(JSON.stringify(request) + '\n'))
    connection.on('data', (chunk: string) => {
      reply += chunk
    })
    connection.on('error', reject)
    connection.on('end', () => {
      try {
        const parsed = JSON.parse(reply) as Reply & { error?: string }
        if (parsed.error !== undefined) reject(new Error(parsed.error))
        else resolve(parsed)
      } catch {
        reject(new Error('the store closed the connection without an answer'))
      }
    })
  })
}
