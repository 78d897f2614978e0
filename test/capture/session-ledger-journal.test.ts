import { constants } from 'node:buffer'
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openLedgerJournal } from '../../src/capture/session-ledger-journal.js'
import type { SessionLedgerJournal } from '../../src/capture/session-ledger-journal.js'
import { createDatabaseLedger } from '../../src/capture/session-ledger-database.js'
import type { DatabaseLedgerOptions } from '../../src/capture/session-ledger-database.js'
import type { SqlClient } from '../../src/deliver/sql-client.js'
import { eventually } from '../helpers/eventually.js'
import type { LedgerEntry } from '../../src/capture/session-ledger.js'
import type { LedgerAdd } from '../../src/capture/session-ledger-rows.js'
import { createSessionSeal } from '../../src/capture/session-seal.js'
import { processStamp } from '../../src/deliver/process-alive.js'

const seal = createSessionSeal(Buffer.from('journal-test-key-0123456789abcdef0123'))
/** A process id that is not running. */
const DEAD_PID = 2 ** 22 + 4321
/** A database ledger whose store ids hash to the entries' audit session ids (`hash-<id>`). */
const ledgerWith = (options: Omit<DatabaseLedgerOptions, 'auditTable' | 'hashSessionId' | 'seal'>) =>
  createDatabaseLedger({ auditTable: 'public.securitylog', hashSessionId: (id) => `hash-${id}`, seal, ...options })

const entry = (id: string, expiresAt = 5_000): LedgerEntry => ({
  user: { username: 'alice', userId: '7', profile: {} },
  auditSessionId: `hash-${id}`,
  ip: '192.0.2.1',
  userAgent: 'curl/8',
  loginTime: 1_000,
  expiresAt,
  absoluteExpiresAt: undefined,
})
const add = (id: string, replace = true, expiresAt = 5_000) => ({ sessionId: `store-id-${id}`, entry: entry(id, expiresAt), replace })

describe('the session ledger journal', () => {
  let dir: string
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'authtrail-journal-'))
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  it('replays in order: a removal cancels the session journaled before it, an adoption never overrides a login', () => {
    const journal = openLedgerJournal(dir, seal)
    journal.append([add('a'), add('b'), add('c', true, 7_000)], [])
    journal.append([add('c', false, 9_000), add('d', false)], ['hash-b', 'hash-written-earlier'])
    journal.append([add('d', true, 8_000)], [])
    const { adds, removals } = journal.backlog()
    expect([...adds.keys()]).toEqual(['hash-a', 'hash-c', 'hash-d'])
    expect(adds.get('hash-a')).toMatchObject({ sessionId: 'store-id-a', replace: true })
    expect(adds.get('hash-c')).toMatchObject({ replace: true, entry: { expiresAt: 7_000 } })
    expect(adds.get('hash-d')).toMatchObject({ replace: true, entry: { expiresAt: 8_000 } })
    expect(removals.get('hash-b')).toMatchObject({ auditSessionId: 'hash-b' })
    expect(removals.has('hash-written-earlier')).toBe(true)
    expect(removals.get('hash-written-earlier')).toBeUndefined()
    journal.close()
  })

  it('writes store ids sealed, never in clear', () => {
    const journal = openLedgerJournal(dir, seal)
    journal.append([add('secret-1234')], [])
    const [file] = readdirSync(dir)
    expect(readFileSync(path.join(dir, file!), 'utf8')).not.toContain('store-id-secret-1234')
    expect(journal.backlog().adds.get('hash-secret-1234')?.sessionId).toBe('store-id-secret-1234')
    journal.close()
  })

  it('keeps what was journaled after the backlog it clears, and leaves no file once empty and closed', () => {
    const journal = openLedgerJournal(dir, seal)
    journal.append([add('a')], [])
    const backlog = journal.backlog()
    journal.append([add('late')], ['hash-a'])
    journal.clear(backlog.through)
    expect(journal.size()).toBe(2)
    const rest = journal.backlog()
    expect([...rest.adds.keys()]).toEqual(['hash-late'])
    expect([...rest.removals.keys()]).toEqual(['hash-a'])
    journal.clear(rest.through)
    expect(journal.size()).toBe(0)
    journal.close()
    expect(readdirSync(dir)).toEqual([])
  })

  it('leaves a journal that still holds writes for the next process', () => {
    const journal = openLedgerJournal(dir, seal)
    journal.append([add('a')], [])
    journal.close()
    expect(readdirSync(dir)).toHaveLength(1)
  })

  it('takes over the journal of a dead process, skipping a line cut short by the kill', () => {
    const writer = openLedgerJournal(dir, seal)
    writer.append([add('a'), add('b')], ['hash-a'])
    writer.close()
    const [left] = readdirSync(dir)
    const orphan = path.join(dir, left!.replace(`ledger-${process.pid}.`, `ledger-${DEAD_PID}.`))
    writeFileSync(orphan, readFileSync(path.join(dir, left!)))
    rmSync(path.join(dir, left!))
    appendFileSync(orphan, 'A {"sealed":"half-wri')
    const journal = openLedgerJournal(dir, seal)
    expect(journal.size()).toBe(3)
    expect([...journal.backlog().adds.keys()]).toEqual(['hash-b'])
    expect(readdirSync(dir)).toHaveLength(1)
    journal.close()
  })

  /** Opens a journal, which takes over what the directory holds, and finds these sessions and removals, and no other file. */
  const expectTakenOver = (adds: string[], removals: string[]): void => {
    const journal = openLedgerJournal(dir, seal)
    const backlog = journal.backlog()
    expect([...backlog.adds.keys()]).toEqual(adds)
    expect([...backlog.removals.keys()]).toEqual(removals)
    expect(readdirSync(dir)).toHaveLength(1)
    journal.close()
  }

  it('takes over the journal of a process killed while clear() rewrote it, and leaves no rewrite behind', () => {
    const writer = openLedgerJournal(dir, seal)
    writer.append([add('a')], [])
    const through = writer.position()
    writer.append([add('b')], ['hash-a'])
    writer.close()
    const [left] = readdirSync(dir)
    const orphan = path.join(dir, left!.replace(`ledger-${process.pid}.`, `ledger-${DEAD_PID}.`))
    writeFileSync(orphan, readFileSync(path.join(dir, left!)))
    rmSync(path.join(dir, left!))
    // clear(through) was writing what follows `through` to `<file>.next` when the kill came, before its rename.
    writeFileSync(`${orphan}.next`, readFileSync(orphan).subarray(through, through + 20))
    expectTakenOver(['hash-b'], ['hash-a'])
  })

  it('takes over, whole, the journal that a process killed while taking it over had claimed, and not its partial copy', () => {
    // The journal that a dead process left logged a session in, then out, and logged another in.
    const claim = path.join(dir, `ledger-${DEAD_PID}.${processStamp()}-1.ndjson.claimed-${DEAD_PID + 1}.1700000000000`)
    writeFileSync(claim, `${addLine('out')}R "hash-out"\n${addLine('in')}`)
    // Its claimer had copied only the first line into its own new journal when it was killed.
    writeFileSync(path.join(dir, `ledger-${DEAD_PID + 1}.1700000000000-2.ndjson.taking`), addLine('out'))
    expectTakenOver(['hash-in'], ['hash-out'])
  })

  it('leaves the rewrite of a live journal alone', () => {
    const other = openLedgerJournal(dir, seal)
    other.append([add('a')], [])
    const [own] = readdirSync(dir)
    writeFileSync(path.join(dir, `${own}.next`), '')
    const journal = openLedgerJournal(dir, seal)
    expect(readdirSync(dir)).toContain(`${own}.next`)
    journal.close()
    other.close()
  })

  /** A dead process's journal holding `text`, as the next process finds it. */
  const orphanHolding = (text: string | Buffer): string => {
    const orphan = path.join(dir, `ledger-${DEAD_PID}.${processStamp()}-1.ndjson`)
    writeFileSync(orphan, text)
    return orphan
  }
  const addLine = (id: string, username = 'alice'): string => `A ${JSON.stringify({ sealed: seal.seal(`store-id-${id}`), entry: { ...entry(id), user: { username, userId: '7', profile: {} } }, replace: true })}\n`

  it('takes over a journal longer than the longest string V8 makes, skipping a run of NUL bytes longer than any line', () => {
    // A hole in a sparse file reads as NUL bytes, as a power loss can leave where a file grew: past the
    // string limit without writing 512 MiB to the disk.
    const orphan = orphanHolding(addLine('before'))
    truncateSync(orphan, constants.MAX_STRING_LENGTH + (1 << 20))
    appendFileSync(orphan, `\n${addLine('after')}R "hash-before"\n`)
    const warnings: string[] = []
    const journal = openLedgerJournal(dir, seal, (m) => warnings.push(m))
    const { adds, removals } = journal.backlog()
    expect([...adds.keys()]).toEqual(['hash-after'])
    expect([...removals.keys()]).toEqual(['hash-before'])
    expect(warnings.join('\n')).toMatch(/1 lines .* were too long to be journal lines/)
    journal.close()
  })

  it('reads back lines, and characters of several bytes, that span its reads, and skips the last line a kill cut short', () => {
    // Two, three and four bytes a character: with reads of 1 to 7 bytes, each falls across a read somewhere.
    const names = ['Jörg', '山田太郎', 'renard 🦊']
    const whole = names.map((name, i) => addLine(`u${i}`, name)).join('')
    const cut = Buffer.from(addLine('cut', '山田'))
    for (const readBytes of [1, 2, 3, 5, 7]) {
      // Cut inside the three bytes of 山.
      const orphan = orphanHolding(Buffer.concat([Buffer.from(whole), cut.subarray(0, cut.indexOf('山') + 1)]))
      const warnings: string[] = []
      const journal = openLedgerJournal(dir, seal, (m) => warnings.push(m), readBytes)
      expect(readdirSync(dir)).not.toContain(path.basename(orphan))
      expect(journal.size()).toBe(3)
      const { adds } = journal.backlog()
      expect([...adds.values()].map((a) => a.entry.user.username)).toEqual(names)
      expect(warnings).toEqual([])
      journal.close()
      for (const name of readdirSync(dir)) rmSync(path.join(dir, name))
    }
  })

  it('keeps what was journaled after the backlog it clears when it copies it in small reads', () => {
    const journal = openLedgerJournal(dir, seal, () => {}, 5)
    journal.append([add('a')], [])
    const through = journal.position()
    journal.append([{ ...add('b'), entry: { ...entry('b'), user: { username: '山田', userId: '8', profile: {} } } }], ['hash-a'])
    journal.clear(through)
    expect(journal.size()).toBe(2)
    journal.append([add('c')], [])
    const rest = journal.backlog()
    expect([...rest.adds.keys()]).toEqual(['hash-b', 'hash-c'])
    expect(rest.adds.get('hash-b')?.entry.user.username).toBe('山田')
    expect([...rest.removals.keys()]).toEqual(['hash-a'])
    journal.clear(rest.through)
    expect(journal.size()).toBe(0)
    journal.close()
  })

  it('takes over a journal named with this process id but left by an earlier process (pid 1 in a restarted container)', () => {
    writeFileSync(path.join(dir, `ledger-${process.pid}.${processStamp() - 60_000}-1.ndjson`), `A ${JSON.stringify({ sealed: seal.seal('store-id-x'), entry: entry('x'), replace: true })}\n`)
    const journal = openLedgerJournal(dir, seal)
    expect([...journal.backlog().adds.keys()]).toEqual(['hash-x'])
    journal.close()
  })

  it('leaves the journal of another instance in this process alone', () => {
    const other = openLedgerJournal(dir, seal)
    other.append([add('a')], [])
    const journal = openLedgerJournal(dir, seal)
    expect(journal.size()).toBe(0)
    expect(other.size()).toBe(1)
    journal.close()
    other.close()
  })

  it('skips, with a warning, a line sealed under another key', () => {
    const other = openLedgerJournal(dir, createSessionSeal(Buffer.from('some-other-key-0123456789abcdef0123')))
    other.append([add('a')], [])
    other.close()
    const [left] = readdirSync(dir)
    const orphan = path.join(dir, left!.replace(`ledger-${process.pid}.`, `ledger-${DEAD_PID}.`))
    writeFileSync(orphan, readFileSync(path.join(dir, left!)))
    rmSync(path.join(dir, left!))
    const warnings: string[] = []
    const journal = openLedgerJournal(dir, seal, (m) => warnings.push(m))
    expect(journal.backlog().adds.size).toBe(0)
    expect(warnings.join('\n')).toMatch(/1 lines .* could not be read back/)
    journal.close()
  })
})

describe('the database ledger when the journal\'s disk refuses', () => {
  it('keeps the waiting sessions in memory instead, and writes them once the database answers', async () => {
    let down = true
    const inserted: string[] = []
    // Just enough of a database for the ledger's writes: refused like a socket while down.
    const client: SqlClient = {
      dialect: 'postgres',
      description: 'a test database',
      async query() {
        if (down) throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })
        return []
      },
      async close() {},
    }
    const refusing: SessionLedgerJournal = {
      append: () => {
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })
      },
      position: () => 0,
      backlog: () => ({ adds: new Map(), removals: new Map(), through: 0 }),
      clear: () => {},
      size: () => 0,
      close: () => {},
    }
    const warnings: string[] = []
    const ledger = createDatabaseLedger({
      client,
      auditTable: 'public.securitylog',
      hashSessionId: (id) => `hash-${id}`,
      seal,
      journal: refusing,
      insert: async (rows) => {
        if (down) throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })
        inserted.push(...rows.map((row) => row.sessionId))
      },
      warn: (message) => warnings.push(message),
    })
    const added = Promise.all(Array.from({ length: 1200 }, (_, i) => ledger.add(`s${i}`, entry(`s${i}`), true)))
    await eventually(async () => expect(warnings.join('\n')).toMatch(/could not write the session ledger journal \(ENOSPC/))
    down = false
    await added
    expect(new Set(inserted).size).toBe(1200)
    await ledger.close()
  }, 30_000)
})

describe('the database ledger while its tries hang (a dropped connection)', () => {
  it('makes one try at a time and keeps its backoff, however many logins keep coming', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'authtrail-journal-'))
    let down = true
    const starts: number[] = []
    // Each try takes 100 ms to fail, as a connect timeout would (shortened).
    const hang = async (): Promise<void> => {
      starts.push(Date.now())
      await new Promise((resolve) => setTimeout(resolve, 100))
      if (down) throw Object.assign(new Error('connect ETIMEDOUT 192.0.2.9:5432'), { code: 'ETIMEDOUT' })
    }
    const client: SqlClient = {
      dialect: 'postgres',
      description: 'a test database',
      async query() {
        await hang()
        return []
      },
      async close() {},
    }
    const inserted = new Set<string>()
    const journal = openLedgerJournal(dir, seal)
    const ledger = ledgerWith({
      client,
      journal,
      insert: async (rows) => {
        await hang()
        for (const row of rows) inserted.add(row.sessionId)
      },
    })
    try {
      // A login every 10 ms for 3 s: each asks for a write soon after.
      const added: Array<Promise<void>> = []
      for (let i = 0; i < 300; i++) {
        added.push(ledger.add(`s${i}`, entry(`s${i}`), true))
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
      const tries = [...starts]
      expect(tries.length).toBeGreaterThanOrEqual(2)
      // Each try starts once the one before has failed (100 ms) and its backoff (at least 50 ms) has
      // passed; tries queued behind a hanging one would follow it back to back, 100 ms apart.
      const gaps = tries.slice(1).map((t, i) => t - tries[i]!)
      expect(Math.min(...gaps)).toBeGreaterThanOrEqual(145)
      down = false
      await Promise.all(added)
      await ledger.close()
      expect(inserted.size).toBe(300)
    } finally {
      await ledger.close()
      rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})

describe('the database ledger once it knows the database is down', () => {
  it('sends a logout\'s removal to the journal without a try of its own', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'authtrail-journal-'))
    let down = true
    let calls = 0
    const refuse = (): void => {
      calls++
      if (down) throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })
    }
    const client: SqlClient = {
      dialect: 'postgres',
      description: 'a test database',
      async query() {
        refuse()
        return []
      },
      async close() {},
    }
    const warnings: string[] = []
    const journal = openLedgerJournal(dir, seal)
    const ledger = ledgerWith({ client, journal, insert: async () => refuse(), warn: (m) => warnings.push(m) })
    try {
      const added = ledger.add('first', entry('first'), true)
      await eventually(async () => expect(warnings.join('\n')).toMatch(/unreachable/))
      const before = calls
      const removed = Array.from({ length: 50 }, (_, i) => ledger.remove(`logged-out-${i}`))
      await new Promise((resolve) => setTimeout(resolve, 20))
      // Without the shortcut, each removal was a DELETE of its own: 50 connection attempts.
      expect(calls - before).toBeLessThanOrEqual(1)
      expect(journal.size()).toBeGreaterThanOrEqual(50)
      down = false
      await added
      expect(await Promise.all(removed)).toEqual(Array(50).fill(undefined))
    } finally {
      await ledger.close()
      rmSync(dir, { recursive: true, force: true })
    }
  }, 30_000)
})

for (const journaled of [false, true]) {
  describe(`the database ledger ${journaled ? 'with' : 'without'} a journal, when a write fails in an outage`, () => {
    it('gives a logout that came while the write ran the entry of the login it cancelled, and leaves that login out of the table', async () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'authtrail-journal-'))
      let started!: () => void
      const writing = new Promise<void>((resolve) => (started = resolve))
      let fail!: () => void
      const failing = new Promise<void>((resolve) => (fail = resolve))
      let tries = 0
      const inserted: string[] = []
      // The table stays empty, so a DELETE finds no row.
      const client: SqlClient = { dialect: 'postgres', description: 'a test database', query: async () => [], async close() {} }
      const ledger = ledgerWith({
        client,
        journal: journaled ? openLedgerJournal(dir, seal) : undefined,
        warn: () => {},
        insert: async (rows) => {
          if (++tries === 1) {
            started()
            await failing
            throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })
          }
          inserted.push(...rows.map((row) => row.sessionId))
        },
      })
      try {
        const added = ledger.add('x', entry('x'), true)
        await writing
        // The login's write is under way, so the logout no longer finds it queued.
        const removed = ledger.remove('x')
        fail()
        await added
        expect(await removed).toEqual(entry('x'))
        await ledger.close()
        expect(inserted).toEqual([])
      } finally {
        await ledger.close()
        rmSync(dir, { recursive: true, force: true })
      }
    })
  })
}

describe('the database ledger journals each session as it is added', () => {
  let dir: string
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'authtrail-journal-'))
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  /** What a process killed now would leave: this journal's file, as the next process finds it. */
  const takenOverAfterKill = (): SessionLedgerJournal => {
    const after = mkdtempSync(path.join(os.tmpdir(), 'authtrail-journal-'))
    const [file] = readdirSync(dir)
    writeFileSync(path.join(after, file!.replace(`ledger-${process.pid}.`, `ledger-${DEAD_PID}.`)), readFileSync(path.join(dir, file!)))
    const journal = openLedgerJournal(after, seal)
    return { ...journal, close: () => (journal.close(), rmSync(after, { recursive: true, force: true })) }
  }
  /** A journal holding these sessions, as a killed process leaves it in the directory. */
  const leftByKilledProcess = (adds: Parameters<SessionLedgerJournal['append']>[0]): void => {
    const left = openLedgerJournal(dir, seal)
    left.append(adds, [])
    left.close()
    const [file] = readdirSync(dir)
    writeFileSync(path.join(dir, file!.replace(`ledger-${process.pid}.`, `ledger-${DEAD_PID}.`)), readFileSync(path.join(dir, file!)))
    rmSync(path.join(dir, file!))
  }
  const answering: SqlClient = { dialect: 'postgres', description: 'a test database', query: async () => [], async close() {} }
  /** Inserts as a read-only standby answers them (not an outage by its SQLSTATE, not a row's fault) until `writable()`. */
  const readOnlyStandby = () => {
    const state = { readOnly: true, statements: 0, tries: 0, inserted: [] as string[] }
    const insert = async (rows: readonly LedgerAdd[]): Promise<void> => {
      state.statements++
      if (rows.length === 3) state.tries++
      if (state.readOnly) throw Object.assign(new Error('cannot execute INSERT in a read-only transaction'), { code: '25006' })
      state.inserted.push(...rows.map((row) => row.sessionId))
    }
    return { state, insert, writable: () => void (state.readOnly = false) }
  }
  const neverAnswering: SqlClient = { dialect: 'postgres', description: 'a test database', query: () => new Promise(() => {}), async close() {} }

  it('has a login on disk before its row is written, and nothing once the row is in', async () => {
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    const inserted: string[] = []
    const journal = openLedgerJournal(dir, seal)
    const ledger = ledgerWith({
      client: neverAnswering,
      journal,
      insert: async (rows) => {
        await gate
        // Sealed once, for the journal: the database thread does not seal it again.
        inserted.push(...rows.map((row) => seal.unseal(row.sealed!)))
      },
    })
    const added = ledger.add('store-id-a', entry('a'), true)
    expect(journal.size()).toBe(1)
    const found = takenOverAfterKill()
    expect(found.backlog().adds.get('hash-a')?.sessionId).toBe('store-id-a')
    found.close()
    release()
    await added
    expect(inserted).toEqual(['store-id-a'])
    expect(journal.size()).toBe(0)
    await ledger.close()
    expect(readdirSync(dir)).toEqual([])
  })

  it('leaves nothing for the next process to bring back when the session ended before its row was written', async () => {
    const journal = openLedgerJournal(dir, seal)
    const ledger = ledgerWith({ client: neverAnswering, journal, insert: () => new Promise(() => {}) })
    // Store ids that hash (hashSessionId above) to the entries' audit session ids.
    void ledger.add('gone', entry('gone'), true)
    void ledger.add('kept', entry('kept'), true)
    // A logout at once: its DELETE never answers, as if the process were killed during it.
    void ledger.remove('gone')
    const found = takenOverAfterKill()
    const { adds, removals } = found.backlog()
    expect([...adds.keys()]).toEqual(['hash-kept'])
    expect([...removals.keys()]).toEqual(['hash-gone'])
    found.close()
    journal.close()
  })

  it('keeps a logout in the journal until its DELETE has answered, and journals logins meanwhile', async () => {
    const table = new Set<string>()
    let deleting = false
    // DELETEs never answer: a process killed during one.
    const client: SqlClient = {
      dialect: 'postgres',
      description: 'a test database',
      query: async (text: string) => {
        if (!text.startsWith('DELETE')) return []
        deleting = true
        return new Promise(() => {})
      },
      async close() {},
    }
    const journal = openLedgerJournal(dir, seal)
    const ledger = ledgerWith({ client, journal, insert: async (rows) => void rows.forEach((row) => table.add(row.entry.auditSessionId)) })
    await ledger.add('s', entry('s'), true)
    expect(table.has('hash-s')).toBe(true)
    void ledger.remove('s')
    await eventually(async () => expect(deleting).toBe(true))
    void ledger.add('u', entry('u'), true)
    await new Promise((resolve) => setTimeout(resolve, 250))
    const found = takenOverAfterKill()
    const { adds, removals } = found.backlog()
    expect([...removals.keys()]).toEqual(['hash-s'])
    expect([...adds.keys()]).toEqual(['hash-u'])
    found.close()
    journal.close()
  })

  it('journals a logout that the full disk refused once the disk takes writes again, while the database is down', async () => {
    let full = false
    const journal = openLedgerJournal(dir, seal)
    const filling: SessionLedgerJournal = {
      ...journal,
      append: (adds, removals) => {
        if (full) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })
        journal.append(adds, removals)
      },
    }
    const refuse = async (): Promise<never> => {
      throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })
    }
    const client: SqlClient = { dialect: 'postgres', description: 'a test database', query: refuse, async close() {} }
    const ledger = ledgerWith({ client, journal: filling, insert: refuse, warn: () => {} })
    await ledger.add('x', entry('x'), true)
    full = true
    void ledger.remove('x')
    await new Promise((resolve) => setTimeout(resolve, 50))
    full = false
    // The next failed try journals it.
    await eventually(async () => {
      const found = takenOverAfterKill()
      try {
        expect([...found.backlog().removals.keys()]).toEqual(['hash-x'])
        expect([...found.backlog().adds.keys()]).toEqual([])
      } finally {
        found.close()
      }
    })
    journal.close()
  })

  it('empties the journal after logouts alone, with no login to write', async () => {
    const journal = openLedgerJournal(dir, seal)
    const ledger = ledgerWith({ client: answering, journal, insert: async () => {} })
    for (let i = 0; i < 100; i++) await ledger.remove(`gone-${i}`)
    await eventually(async () => expect(journal.size()).toBe(0))
    await ledger.close()
  })

  const refusals = [
    // MariaDB's answer to a value longer than its column: not an outage, and the same at every try.
    { what: 'a value too long for its column', error: () => Object.assign(new Error("Data too long for column 'user_agent'"), { code: 'ER_DATA_TOO_LONG', errno: 1406, sqlState: '22001' }), message: /refused 3 sessions \(Data too long/ },
    // A trigger's RAISE EXCEPTION: no SQLSTATE class of a row's values, yet the row's own fault.
    { what: 'a trigger', error: () => Object.assign(new Error('not this user'), { code: 'P0001' }), message: /refused 3 sessions \(not this user/ },
  ]
  for (const { what, error, message } of refusals) {
    it(`drops only the session the table refuses (${what}), and writes and clears the rest, from a killed process's journal too`, async () => {
      // The refused rows first: the rows tried first must not decide for the others.
      leftByKilledProcess([add('bad-1'), add('bad-2'), add('bad-3'), add('good-1'), add('good-2'), add('good-3')])
      const inserted: string[] = []
      const warnings: string[] = []
      const journal = openLedgerJournal(dir, seal)
      const ledger = ledgerWith({
        client: answering,
        journal,
        insert: async (rows) => {
          if (rows.some((row) => row.sessionId.startsWith('store-id-bad'))) throw error()
          inserted.push(...rows.map((row) => row.sessionId))
        },
        warn: (line) => warnings.push(line),
      })
      await eventually(async () => expect(inserted.sort()).toEqual(['store-id-good-1', 'store-id-good-2', 'store-id-good-3']))
      await eventually(async () => expect(journal.size()).toBe(0))
      expect(warnings.join('\n')).toMatch(message)
      // A later login is written as usual, not refused with the bad row again.
      await ledger.add('store-id-later', entry('later'), true)
      expect(inserted).toContain('store-id-later')
      await ledger.close()
    })
  }

  it('keeps the row of a login that came after its session\'s logout, with the same store id', async () => {
    const table = new Set<string>()
    let gate: Promise<void> | undefined
    let release!: () => void
    const client: SqlClient = {
      dialect: 'postgres',
      description: 'a test database',
      query: async (text: string, params: readonly unknown[] = []) => {
        if (text.startsWith('DELETE')) for (const hashed of params) table.delete(hashed as string)
        return []
      },
      async close() {},
    }
    const journal = openLedgerJournal(dir, seal)
    const ledger = ledgerWith({
      client,
      journal,
      insert: async (rows) => {
        await gate
        for (const row of rows) table.add(row.entry.auditSessionId)
      },
    })
    await ledger.add('x', entry('x'), true)
    gate = new Promise((resolve) => (release = resolve))
    void ledger.add('y', entry('y'), true)
    await new Promise((resolve) => setTimeout(resolve, 150)) // y's write is under way, held
    const removed = ledger.remove('x')
    const again = ledger.add('x', entry('x', 9_000), true)
    gate = undefined
    release()
    await Promise.all([removed, again])
    await eventually(async () => expect([...table].sort()).toEqual(['hash-x', 'hash-y']))
    await ledger.close()
  })

  it('finds every bad row among many, however many there are, and writes the rest', async () => {
    const ids = Array.from({ length: 200 }, (_, i) => (i % 7 === 3 ? `bad-${i}` : `good-${i}`))
    leftByKilledProcess(ids.map((id) => add(id)))
    const inserted: string[] = []
    const journal = openLedgerJournal(dir, seal)
    const ledger = ledgerWith({
      client: answering,
      journal,
      insert: async (rows) => {
        if (rows.some((row) => row.sessionId.startsWith('store-id-bad'))) throw Object.assign(new Error('value too long for type character varying(1024)'), { code: '22001' })
        inserted.push(...rows.map((row) => row.sessionId))
      },
      warn: () => {},
    })
    await eventually(async () => expect(journal.size()).toBe(0), 5000)
    expect(inserted.sort()).toEqual(ids.filter((id) => id.startsWith('good')).map((id) => `store-id-${id}`).sort())
    await ledger.close()
  })

  it('drops nothing when the database turns read-only after the first statement of a write went in', async () => {
    const ids = Array.from({ length: 600 }, (_, i) => `s${i}`)
    leftByKilledProcess(ids.map((id) => add(id)))
    const standby = readOnlyStandby()
    standby.state.readOnly = false
    const journal = openLedgerJournal(dir, seal)
    const ledger = ledgerWith({
      client: answering,
      journal,
      insert: async (rows) => {
        await standby.insert(rows)
        // A switchover: the old primary refuses writes from here on.
        standby.state.readOnly = true
      },
      warn: () => {},
    })
    await eventually(async () => expect(standby.state.inserted).toHaveLength(500))
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(journal.backlog().adds.size).toBe(600)
    await ledger.close()
  })

  it('drops nothing when a read-only database refuses a batch of two', async () => {
    const standby = readOnlyStandby()
    const journal = openLedgerJournal(dir, seal)
    const ledger = ledgerWith({ client: answering, journal, insert: standby.insert, warn: () => {} })
    // On disk, so they resolve even while the database refuses them.
    await Promise.all([ledger.add('one', entry('one'), true), ledger.add('two', entry('two'), true)])
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect([...journal.backlog().adds.keys()].sort()).toEqual(['hash-one', 'hash-two'])
    standby.writable()
    await eventually(async () => expect(standby.state.inserted.sort()).toEqual(['one', 'two']), 5000)
    await ledger.close()
  })

  it('answers a removal with the row it deleted, though the inserts after it in the same write fail', async () => {
    let down = false
    const row = { session_id: 'hash-x', sealed_id: seal.seal('x'), username: 'alice', user_id: '7', profile: '{}', ip: '192.0.2.1', user_agent: 'curl/8', login_ms: 1_000, expires_ms: 5_000, absolute_ms: null, ended: null }
    const client: SqlClient = { dialect: 'postgres', description: 'a test database', query: async <Row>(text: string) => (text.startsWith('DELETE') ? [row as Row] : []), async close() {} }
    const journal = openLedgerJournal(dir, seal)
    const ledger = ledgerWith({
      client,
      journal,
      insert: async () => {
        if (down) throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })
      },
      warn: () => {},
    })
    await ledger.add('x', entry('x'), true)
    down = true
    const removed = ledger.remove('x')
    void ledger.add('y', entry('y'), true)
    // What session-watch reports the session's end with (SESSIONEND).
    expect((await removed)?.auditSessionId).toBe('hash-x')
    down = false
    await ledger.close()
  })

  // The connection drops once: at the write's second DELETE (the first one's rows are gone already), or at
  // the first marker a removal leaves, after its DELETE.
  for (const [statement, at] of [['DELETE', 2], ['INSERT', 1]] as const) it(`answers every removal of a write with more than one DELETE with the row it deleted, though the ${at === 1 ? 'first' : 'second'} ${statement} fails`, async () => {
    const rowOf = (id: string) => ({ session_id: `hash-${id}`, sealed_id: seal.seal(id), username: 'alice', user_id: '7', profile: '{}', ip: '192.0.2.1', user_agent: 'curl/8', login_ms: 1_000, expires_ms: 5_000, absolute_ms: null, ended: null })
    const ids = Array.from({ length: 600 }, (_, i) => `s${i}`)
    const table = new Map(ids.map((id) => [`hash-${id}`, rowOf(id)]))
    let deletes = 0
    let seen = 0
    const client: SqlClient = {
      dialect: 'postgres',
      description: 'a test database',
      query: async <Row>(text: string, params: readonly unknown[] = []) => {
        if (text.startsWith(statement) && ++seen === at) throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })
        if (!text.startsWith('DELETE')) return []
        deletes++
        const rows = params.flatMap((hashed) => (table.has(hashed as string) ? [table.get(hashed as string)!] : []))
        for (const hashed of params) table.delete(hashed as string)
        return rows as Row[]
      },
      async close() {},
    }
    const journal = openLedgerJournal(dir, seal)
    const ledger = ledgerWith({ client, journal, insert: async () => {}, warn: () => {} })
    // What session-watch reports each session's end with (SESSIONEND): none may come back empty.
    const removed = await Promise.all(ids.map((id) => ledger.remove(id)))
    expect(deletes).toBeGreaterThan(at)
    expect(removed.map((entry) => entry?.auditSessionId)).toEqual(ids.map((id) => `hash-${id}`))
    await ledger.close()
  })

  it('keeps all it holds and tries again with backoff while the database refuses every write (a read-only standby)', async () => {
    leftByKilledProcess([add('a'), add('b'), add('c')])
    const standby = readOnlyStandby()
    const journal = openLedgerJournal(dir, seal)
    const ledger = ledgerWith({ client: answering, journal, insert: standby.insert, warn: () => {} })
    // The sweep awaits its removals: a refusal that may last must not hold it up.
    await ledger.remove('gone')
    await new Promise((resolve) => setTimeout(resolve, 1000))
    // Tries 50 ms, 100 ms, 200 ms... apart, not one per 100 ms; each splits the 3 rows (5 statements in
    // all), finds none that goes in, and gives up, dropping nothing.
    expect(standby.state.tries).toBeGreaterThanOrEqual(2)
    expect(standby.state.tries).toBeLessThanOrEqual(6)
    expect(standby.state.statements).toBeLessThanOrEqual(5 * standby.state.tries)
    expect(journal.backlog().adds.size).toBe(3)
    expect([...journal.backlog().removals.keys()]).toEqual(['hash-gone'])
    standby.writable()
    await eventually(async () => expect(standby.state.inserted.sort()).toEqual(['store-id-a', 'store-id-b', 'store-id-c']), 5000)
    await eventually(async () => expect(journal.size()).toBe(0))
    await ledger.close()
  })

  it('journals a login that comes while the ledger closes, for the next process', async () => {
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    const journal = openLedgerJournal(dir, seal)
    const ledger = ledgerWith({ client: answering, journal, insert: () => gate })
    void ledger.add('first', entry('first'), true)
    const closing = ledger.close()
    await ledger.add('late', entry('late'), true)
    release()
    await closing
    // The last write took 'first'; 'late' is left for the next process.
    const found = takenOverAfterKill()
    expect([...found.backlog().adds.keys()]).toEqual(['hash-late'])
    found.close()
    await expect(ledger.add('after', entry('after'), true)).rejects.toThrow(/closed/)
  })
})
