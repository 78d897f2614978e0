import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import passportModule from 'passport'
import { authtrail } from '../../src/authtrail.js'
import { ConfigError, loadConfig } from '../../src/config/load-config.js'
import { createOutbox } from '../../src/deliver/outbox.js'
import { loadScriptSink } from '../../src/deliver/script/script-sink.js'
import type { ProcedureContext } from '../../src/deliver/script/script-sink.js'
import { createDescriber } from '../../src/describe/event-xml.js'
import { prefixed } from '../../src/logger.js'
import { DeliveryError } from '../../src/types.js'
import type { AuditEvent, AuditEventType, DescribedEvent, Sink } from '../../src/types.js'
import { memoryLogger, TEST_SESSION_KEY, tempProject } from '../helpers/temp-project.js'
import type { TempProject } from '../helpers/temp-project.js'
import { auditEvent } from '../helpers/audit-event.js'

/** What a test procedure saw in one call. */
interface Call {
  readonly sessionContext: string
  readonly data: string
  readonly type: AuditEventType
  readonly context: ProcedureContext
  readonly module: string
}

/**
 * Test procedures push their arguments to `globalThis[<value of test.calls>]`, so that each test reads
 * its own array; the key comes from the properties file, which the procedure receives in its context.
 */
const callsOf = (key: string): Call[] => ((globalThis as Record<string, unknown>)[key] ??= []) as Call[]

/** (a) A JavaScript module whose default export is the procedure. */
const MJS_PROCEDURE = `
export default async function record(sessionContext, data, type, context) {
  const calls = (globalThis[context.properties['test.calls']] ??= [])
  calls.push({ sessionContext, data, type, context, module: 'mjs' })
}
`

/** (b) A TypeScript module (annotations, an interface, a cast) exporting \`securitylogging\` by name. */
const TS_PROCEDURE = `
import { appendFile } from 'node:fs/promises'

interface Context {
  readonly eventId: string
  readonly properties: Readonly<Record<string, string>>
}

type Calls = Array<Record<string, unknown>>

export const notTheProcedure: number = 42

export async function securitylogging(sessionContext: string, data: string, type: string, context: Context): Promise<void> {
  const calls = ((globalThis as Record<string, unknown>)[context.properties['test.calls'] as string] ??= []) as Calls
  calls.push({ sessionContext, data, type, context, module: 'ts' })
  await appendFile(context.properties['test.file'] as string, JSON.stringify({ id: context.eventId, type }) + '\\n')
}
`

/** Rejects the events of one user, as a procedure with a CHECK constraint would. */
const PICKY_PROCEDURE = `
export default function picky(sessionContext, data, type, context) {
  if (context.username === 'mallory') throw new Error('user mallory is not allowed in this table')
  if (context.username === 'eve') throw 'eve is not allowed either'
  ;(globalThis[context.properties['test.calls']] ??= []).push({ sessionContext, data, type, context, module: 'picky' })
}
`

let project: TempProject
let callsKey: string

function setUp(proc: string): void {
  callsKey = `__authtrailCalls_${randomUUID().replaceAll('-', '')}`
  project = tempProject()
  // Rewritten so that the TypeScript procedure gets an absolute path for the file it appends to.
  project.write(
    'config/generalapp.properties',
    [
      `security.logging.proc = ${proc}`,
      'security.logging.sessionid = raw',
      `test.calls = ${callsKey}`,
      `test.file = ${path.join(project.dir, 'audit.jsonl')}`,
      '',
    ].join('\n'),
  )
  project.write('procedures/recorder.mjs', MJS_PROCEDURE)
  project.write('procedures/recorder-ts.ts', TS_PROCEDURE)
  project.write('procedures/picky.mjs', PICKY_PROCEDURE)
}

afterEach(() => {
  delete (globalThis as Record<string, unknown>)[callsKey]
  project?.remove()
})

const proceduresDir = () => path.join(project.dir, 'procedures')
const config = () => loadConfig(project.config, project.dir)

function userEvent(type: AuditEventType, username: string, overrides: Partial<AuditEvent> = {}): AuditEvent {
  return auditEvent(type, { sessionId: `sess-${username}`, username, userId: `${username}-id`, ...overrides })
}

const describeEvent = createDescriber()
const described = (...events: AuditEvent[]): DescribedEvent[] => events.map(describeEvent)

/** The rejection of `promise`, failing the test if it resolves. */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => {
      throw new Error('expected a rejection, but the promise resolved')
    },
    (err: unknown) => err as Error,
  )
}

function expectContextOf(call: Call, event: AuditEvent, logger: unknown): void {
  expect(call.context).toMatchObject({
    eventId: event.id,
    type: event.type,
    username: event.username,
    sessionId: event.sessionId,
    ip: event.ip,
  })
  expect(call.context.time).toBeInstanceOf(Date)
  expect(call.context.time.getTime()).toBe(event.time)
  expect(call.context.properties).toMatchObject({
    'security.logging.proc': expect.any(String),
    'security.logging.sessionid': 'raw',
    'test.calls': callsKey,
    'test.file': path.join(project.dir, 'audit.jsonl'),
  })
  expect(call.context.logger).toBe(logger)
}

describe.each([
  { proc: 'recorder.mjs', module: 'mjs', how: 'a .mjs module with a default export' },
  { proc: 'recorder-ts.ts', module: 'ts', how: 'a .ts module with a named export securitylogging' },
])('script procedure: $how', ({ proc, module }) => {
  beforeEach(() => setUp(proc))

  it('receives the sessioncontext XML, the data XML, the type and a context for each event, in order', async () => {
    const logger = prefixed(memoryLogger())
    const sink = await loadScriptSink(config(), proceduresDir(), logger)
    expect(sink.description).toContain(path.join(proceduresDir(), proc))

    const login = userEvent('LOGIN', 'alice')
    const failure = userEvent('LOGINERROR', 'bob')
    const logout = userEvent('LOGOUT', 'alice')
    const batch = described(login, failure, logout)
    await sink.deliver([login, failure, logout])

    const calls = callsOf(callsKey)
    expect(calls.map((c) => c.module)).toEqual([module, module, module])
    expect(calls.map((c) => c.type)).toEqual(['LOGIN', 'LOGINERROR', 'LOGOUT'])
    for (const [i, call] of calls.entries()) {
      const sent = batch[i]!
      expect(call.sessionContext.startsWith('<sessioncontext>')).toBe(true)
      expect(call.data.startsWith('<data>')).toBe(true)
      expect(call.sessionContext).toBe(sent.sessionContext)
      expect(call.data).toBe(sent.data)
      expect(call.sessionContext).toContain(`<eventid>${sent.event.id}</eventid>`)
      expectContextOf(call, sent.event, logger)
    }
    expect(calls[0]!.data).toContain('<UserName>alice</UserName>')
    expect(calls[1]!.data).toContain('<SecurityLastExeption>Incorrect password.</SecurityLastExeption>')
    expect(calls[0]!.context.properties['security.logging.proc']).toBe(proc)
    await sink.close()
  })

  it('is resolved by authtrail() at startup, which then says where events go', async () => {
    const logger = memoryLogger()
    const Passport = (passportModule as unknown as { Passport: new () => unknown }).Passport
    const audit = await authtrail({
      passport: new Passport() as Parameters<typeof authtrail>[0]['passport'],
      cwd: project.dir,
      config: project.config,
      logger,
      sessionKey: TEST_SESSION_KEY,
    })
    try {
      expect(audit.enabled).toBe(true)
      expect(audit.config.procKind).toBe('script')
      expect(logger.lines.some((l) => l.includes(path.join(proceduresDir(), proc)))).toBe(true)
      await expect(audit.query()).rejects.toThrow(/script procedure/)
    } finally {
      await audit.close()
    }
  })

  it('gets every event through the outbox, described by createDescriber()', async () => {
    const logger = prefixed(memoryLogger())
    const sink = await loadScriptSink(config(), proceduresDir(), logger)
    const outbox = createOutbox({ sink, logger })
    const events = [userEvent('LOGIN', 'carol'), userEvent('SESSIONTIMEOUT', 'carol'), userEvent('LOGINERROR', 'dave')]
    for (const e of events) outbox.enqueue(e)
    await outbox.close(5000)
    expect(callsOf(callsKey).map((c) => c.context.eventId)).toEqual(events.map((e) => e.id))
    expect(outbox.metrics()).toMatchObject({ delivered: 3, sinkErrors: 0, parked: 0 })
  })
})

describe('TypeScript script procedure', () => {
  beforeEach(() => setUp('recorder-ts.ts'))

  it('runs its own async code, here appending one line per event to a file', async () => {
    const sink = await loadScriptSink(config(), proceduresDir(), prefixed(memoryLogger()))
    const events = [userEvent('LOGIN', 'alice'), userEvent('LOGOUT', 'alice')]
    await sink.deliver(events)
    const lines = readFileSync(path.join(project.dir, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as unknown)
    expect(lines).toEqual(events.map((e) => ({ id: e.id, type: e.type })))
  })
})

describe('script procedure that rejects some events', () => {
  beforeEach(() => setUp('picky.mjs'))

  it('fails the batch with a DeliveryError naming only the rejected event, after storing the others', async () => {
    const sink = await loadScriptSink(config(), proceduresDir(), prefixed(memoryLogger()))
    const alice = userEvent('LOGIN', 'alice')
    const mallory = userEvent('LOGIN', 'mallory')
    const bob = userEvent('LOGOUT', 'bob')
    const err = await rejection(sink.deliver([alice, mallory, bob]))

    expect(err).toBeInstanceOf(DeliveryError)
    const failed = (err as DeliveryError).failed
    expect([...failed.keys()]).toEqual([mallory.id])
    expect(failed.get(mallory.id)!.message).toBe('user mallory is not allowed in this table')
    expect(err.message).toContain('1 of 3')
    expect(callsOf(callsKey).map((c) => c.context.eventId)).toEqual([alice.id, bob.id])
  })

  it('wraps a thrown non-Error value in an Error for the rejected event', async () => {
    const sink = await loadScriptSink(config(), proceduresDir(), prefixed(memoryLogger()))
    const eve = userEvent('LOGIN', 'eve')
    const err = (await rejection(sink.deliver([eve]))) as DeliveryError
    expect(err).toBeInstanceOf(DeliveryError)
    expect(failedError(err, eve.id)).toBeInstanceOf(Error)
    expect(failedError(err, eve.id).message).toBe('eve is not allowed either')
  })

  it('has the outbox park the rejected event after its retries while the others are delivered', async () => {
    const logger = memoryLogger()
    const sink = await loadScriptSink(config(), proceduresDir(), prefixed(logger))
    const outbox = createOutbox({ sink, logger: prefixed(logger), retry: { initialDelayMs: 5, maxDelayMs: 20, maxAttempts: 3 } })
    const alice = userEvent('LOGIN', 'alice')
    const mallory = userEvent('LOGINERROR', 'mallory')
    const bob = userEvent('LOGIN', 'bob')
    for (const e of [alice, mallory, bob]) outbox.enqueue(e)
    await outbox.flush()
    expect(callsOf(callsKey).map((c) => c.context.eventId)).toEqual([alice.id, bob.id])
    expect(outbox.parked().map((p) => [p.event.id, p.attempts])).toEqual([[mallory.id, 3]])
    expect(outbox.parked()[0]!.error).toContain('user mallory is not allowed')
    await outbox.close(100)
  })
})

function failedError(err: DeliveryError, id: string): Error {
  const failure = err.failed.get(id)
  if (!failure) throw new Error(`event ${id} is not among the failed ones: ${[...err.failed.keys()].join(', ')}`)
  return failure
}

describe('script procedure that cannot be used', () => {
  const expectConfigError = (err: Error, proc: string) => {
    expect(err).toBeInstanceOf(ConfigError)
    expect(err.message).toContain(project.config)
    expect(err.message).toContain('"security.logging.proc"')
    expect(err.message).toContain(JSON.stringify(proc))
  }

  it('fails with a ConfigError naming key and value when the module exports no function', async () => {
    setUp('no-function.mjs')
    project.write('procedures/no-function.mjs', 'export const answer = 42\nexport default { not: "a function" }\n')
    const err = await rejection(loadScriptSink(config(), proceduresDir(), prefixed(memoryLogger())))
    expectConfigError(err, 'no-function.mjs')
    expect(err.message).toContain('exports no function')
  })

  it('fails with a ConfigError naming key and value when a .ts module exports no function', async () => {
    setUp('no-function.ts')
    project.write('procedures/no-function.ts', 'export const answer: number = 42\n')
    const err = await rejection(loadScriptSink(config(), proceduresDir(), prefixed(memoryLogger())))
    expectConfigError(err, 'no-function.ts')
  })

  it('fails authtrail() startup with that ConfigError', async () => {
    setUp('no-function.mjs')
    project.write('procedures/no-function.mjs', 'export const answer = 42\n')
    const Passport = (passportModule as unknown as { Passport: new () => unknown }).Passport
    const started = authtrail({
      passport: new Passport() as Parameters<typeof authtrail>[0]['passport'],
      cwd: project.dir,
      config: project.config,
      logger: memoryLogger(),
      sessionKey: TEST_SESSION_KEY,
    })
    const err = await rejection(started.then(async (audit) => {
      await audit.close()
      return audit
    }))
    expectConfigError(err, 'no-function.mjs')
  })

  it('fails with a ConfigError naming key and value when the module does not load', async () => {
    setUp('broken.mjs')
    project.write('procedures/broken.mjs', 'export default function (\n')
    const err = await rejection(loadScriptSink(config(), proceduresDir(), prefixed(memoryLogger())))
    expectConfigError(err, 'broken.mjs')
    expect(err.message).toContain('failed to load')
  })

  it('fails with a ConfigError naming key and value when the script file does not exist', async () => {
    setUp('absent.mjs')
    const err = await rejection(loadScriptSink(config(), proceduresDir(), prefixed(memoryLogger())))
    expectConfigError(err, 'absent.mjs')
  })

  it('finds a procedure exported under the camel-cased file name', async () => {
    setUp('my-logger.mjs')
    project.write(
      'procedures/my-logger.mjs',
      "export const other = 1\nexport function myLogger(sessionContext, data, type, context) {\n  (globalThis[context.properties['test.calls']] ??= []).push({ sessionContext, data, type, context, module: 'camel' })\n}\n",
    )
    const sink: Sink = await loadScriptSink(config(), proceduresDir(), prefixed(memoryLogger()))
    await sink.deliver([userEvent('LOGIN', 'alice')])
    expect(callsOf(callsKey).map((c) => c.module)).toEqual(['camel'])
  })
})
