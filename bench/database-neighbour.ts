/**
 * A control for the login benchmarks: the audit database's work, done by another process. Run in the
 * directory of a demo's properties file, it opens the same delivery (the same database thread, procedure
 * and batching) and delivers `rate` events per second, LOGIN and LOGINERROR alternating, until SIGTERM.
 * The baseline demo measured while this runs beside it shows what the database's own work costs logins
 * on this machine, whoever does it; the audited demo's gap beyond that is authtrail's share.
 *
 * Run: node --import tsx bench/database-neighbour.ts <rate>   (prints "ready", then on SIGTERM the count)
 */
import { randomUUID } from 'node:crypto'
import path from 'node:path'
import { loadConfig } from '../src/config/load-config.js'
import { resolveDelivery } from '../src/deliver/resolve-delivery.js'
import type { AuditEvent } from '../src/types.js'

const rate = Number(process.argv[2])
const TICK_MS = 20
const logger = { info: () => {}, warn: (m: string) => console.error(m), error: (m: string) => console.error(m) }
const config = loadConfig(path.resolve('config/generalapp.properties'))
const delivery = await resolveDelivery(config, path.resolve('procedures'), process.env, logger)
if (!delivery) throw new Error('database-neighbour: logging is off in config/generalapp.properties')

const event = (n: number): AuditEvent => ({
  id: randomUUID(),
  type: n % 2 === 0 ? 'LOGIN' : 'LOGINERROR',
  time: Date.now(),
  sessionId: randomUUID().replaceAll('-', ''),
  username: 'alice',
  userId: n % 2 === 0 ? '1' : '',
  ip: '127.0.0.1',
  host: '127.0.0.1',
  userAgent: n % 2 === 0 ? 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36' : 'curl/8.5.0',
  method: n % 2 === 0 ? '' : 'FORM',
  message: n % 2 === 0 ? '' : 'Bad credentials',
  urlParams: [],
  profile: {},
})

let sent = 0
let due = 0
let busy = false
const started = Date.now()
const timer = setInterval(() => {
  // Events owed since the start; a batch still in flight lets them accumulate into the next one.
  due = Math.floor(((Date.now() - started) * rate) / 1000)
  if (busy || due <= sent) return
  const batch = Array.from({ length: Math.min(config.batchSize, due - sent) }, (_, i) => event(sent + i))
  busy = true
  delivery.sink.deliver(batch).then(
    () => {
      sent += batch.length
      busy = false
    },
    (err: Error) => {
      console.error(`database-neighbour: ${err.message}`)
      process.exit(1)
    },
  )
}, TICK_MS)
process.once('SIGTERM', () => {
  clearInterval(timer)
  void delivery.close().then(() => {
    console.log(`delivered ${sent} of ${due}`)
    process.exit(0)
  })
})
console.log('ready')
