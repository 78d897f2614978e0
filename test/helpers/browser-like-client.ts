import type { AddressInfo } from 'node:net'
import type { Server } from 'node:http'

/** Starts an Express app on an ephemeral loopback port. */
export async function listen(app: { listen: (port: number, host: string, cb: () => void) => Server }): Promise<{ url: string; close(): Promise<void> }> {
  let server!: Server
  await new Promise<void>((resolve) => {
    server = app.listen(0, '127.0.0.1', resolve)
  })
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.()
        server.close(() => resolve())
      }),
  }
}

/** A client that keeps cookies and does not follow redirects, like a browser seen one request at a time. */
export function client(base: string, headers: Record<string, string> = {}) {
  const cookies = new Map<string, string>()
  const request = async (method: string, path: string, form?: Record<string, string>, extra: Record<string, string> = {}) => {
    const response = await fetch(base + path, {
      method,
      redirect: 'manual',
      headers: {
        ...headers,
        ...extra,
        ...(cookies.size > 0 ? { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') } : {}),
        ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      ...(form ? { body: new URLSearchParams(form).toString() } : {}),
    })
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';')
      const eq = pair!.indexOf('=')
      cookies.set(pair!.slice(0, eq), pair!.slice(eq + 1))
    }
    const text = await response.text()
    return { status: response.status, location: response.headers.get('location'), headers: response.headers, text }
  }
  return {
    get: (path: string, extra?: Record<string, string>) => request('GET', path, undefined, extra),
    post: (path: string, form?: Record<string, string>, extra?: Record<string, string>) => request('POST', path, form ?? {}, extra),
    /** The raw express-session id from the `connect.sid` cookie (`s:<id>.<signature>`). */
    sessionId(): string | undefined {
      const value = cookies.get('connect.sid')
      if (!value) return undefined
      const decoded = decodeURIComponent(value)
      return decoded.slice(2, decoded.lastIndexOf('.'))
    },
  }
}
