import net from 'node:net'
import type { AddressInfo } from 'node:net'

/**
 * A loopback TCP proxy to a database, which a test can take down and bring back: an outage of the
 * database as one app sees it, without stopping the server other tests share.
 */
export async function tcpProxy(targetPort: number, targetHost = '127.0.0.1') {
  const sockets = new Set<net.Socket>()
  let server: net.Server | undefined
  let port = 0
  const listen = () =>
    new Promise<void>((resolve) => {
      server = net.createServer((incoming) => {
        const outgoing = net.connect(targetPort, targetHost)
        for (const socket of [incoming, outgoing]) {
          sockets.add(socket)
          socket.on('close', () => sockets.delete(socket))
          socket.on('error', () => socket.destroy())
        }
        incoming.pipe(outgoing).pipe(incoming)
      })
      server.listen(port, '127.0.0.1', () => {
        port = (server!.address() as AddressInfo).port
        resolve()
      })
    })
  await listen()
  return {
    get port() {
      return port
    },
    /** Cuts every connection and refuses new ones. */
    async down() {
      await new Promise<void>((resolve) => {
        server!.close(() => resolve())
        for (const socket of sockets) socket.destroy()
      })
    },
    up: listen,
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => (server?.listening ? server.close(() => resolve()) : resolve()))
    },
  }
}
