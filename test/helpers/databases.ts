import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import mysql from 'mysql2/promise'
import pg from 'pg'
import { afterEach, beforeEach } from 'vitest'
import { openEmbeddedStore } from '../../src/deliver/pglite/embedded-store.js'
import { createMariadbClient } from '../../src/deliver/mariadb/mariadb-client.js'
import { createPostgresClient } from '../../src/deliver/postgres/postgres-client.js'
import type { SqlClient } from '../../src/deliver/sql-client.js'
import { packageFile } from '../../src/package-files.js'
import { tempProject } from './temp-project.js'

export const POSTGRES_URL = process.env.AUTHTRAIL_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
export const MARIADB_URL = process.env.AUTHTRAIL_TEST_MARIADB_URL ?? 'mariadb://root@127.0.0.1:3306/test'

/** One isolated place to log to: its own schema (PostgreSQL), database (MariaDB) or directory (PGlite). */
export interface TestNamespace {
  readonly client: SqlClient
  /** `security.logging.*` properties pointing at it. */
  readonly properties: Record<string, string>
  readonly proc: string
  /** The audit table as SQL text for `client`. */
  readonly table: string
  /** A name unique to this namespace, for schemas, databases and roles. */
  readonly id: string
  /** Runs administrative SQL (DDL, several statements) in the namespace. */
  admin(sql: string): Promise<void>
  teardown(): Promise<void>
}

export interface TestDatabase {
  readonly name: 'pglite' | 'postgres' | 'mariadb'
  /** Why it cannot run here, or undefined when it can. */
  readonly unavailable: string | undefined
  /** Creates a namespace with the shipped procedures installed. */
  create(): Promise<TestNamespace>
}

const uniqueId = () => `at_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`

/** Splits a MariaDB script the way the mariadb client does, honouring DELIMITER lines. */
export function splitMariadbScript(script: string): string[] {
  const statements: string[] = []
  let delimiter = ';'
  let current = ''
  for (const line of script.split('\n')) {
    const directive = /^\s*DELIMITER\s+(\S+)\s*$/i.exec(line)
    if (directive) {
      delimiter = directive[1]!
      continue
    }
    if (/^\s*--/.test(line) && current.trim() === '') continue
    current += line + '\n'
    let end: number
    while ((end = current.indexOf(delimiter)) >= 0) {
      const statement = current.slice(0, end).trim()
      if (statement !== '') statements.push(statement)
      current = current.slice(end + delimiter.length)
    }
  }
  if (current.trim() !== '') statements.push(current.trim())
  return statements
}

export async function probe(check: () => Promise<unknown>, what: string): Promise<string | undefined> {
  try {
    await check()
    return undefined
  } catch (err) {
    const reason = `${what} is not reachable (${(err as Error).message})`
    // CI has these servers; a missing one there is a failure, never a quiet skip.
    if (process.env.CI) throw new Error(`${reason}; CI=true requires it. .ci/run starts the services it needs.`)
    console.warn(`skipping ${what} tests: ${reason}`)
    return reason
  }
}

const pglite: TestDatabase = {
  name: 'pglite',
  unavailable: undefined,
  async create() {
    const project = tempProject()
    const install = `${readFileSync(packageFile('procedures/securitylogging.sql'), 'utf8')}`
    const store = await openEmbeddedStore({ dir: path.join(project.dir, 'data'), schema: 'dbo', table: 'dbo.securitylog', installFile: project.write('install.sql', install), serve: false })
    return {
      client: store.client,
      properties: { 'security.logging.proc': 'dbo.securitylogging', 'security.logging.db': 'embedded', 'security.logging.embedded.dir': path.join(project.dir, 'data') },
      proc: 'dbo.securitylogging',
      table: 'dbo.securitylog',
      id: uniqueId(),
      admin: (sql) => store.exec(`SET search_path TO dbo, public; ${sql}; SET search_path TO DEFAULT`),
      async teardown() {
        await store.close()
        project.remove()
      },
    }
  },
}

const postgresUnavailable = await probe(async () => {
  const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 3000 })
  await client.connect()
  await client.end()
}, `PostgreSQL at ${POSTGRES_URL}`)

const postgres: TestDatabase = {
  name: 'postgres',
  unavailable: postgresUnavailable,
  async create() {
    const id = uniqueId()
    const admin = async (sql: string) => {
      const client = new pg.Client({ connectionString: POSTGRES_URL })
      await client.connect()
      try {
        await client.query(`SET search_path TO ${id}`)
        await client.query(sql)
      } finally {
        await client.end()
      }
    }
    const bootstrap = new pg.Client({ connectionString: POSTGRES_URL })
    await bootstrap.connect()
    await bootstrap.query(`CREATE SCHEMA ${id}`)
    await bootstrap.end()
    await admin(readFileSync(packageFile('procedures/securitylogging.sql'), 'utf8'))
    const client = createPostgresClient({ url: POSTGRES_URL, poolSize: 4 })
    return {
      client,
      properties: { 'security.logging.proc': `${id}.securitylogging`, 'security.logging.db': POSTGRES_URL, 'security.logging.table': `${id}.securitylog` },
      proc: `${id}.securitylogging`,
      table: `${id}.securitylog`,
      id,
      admin,
      async teardown() {
        await client.close()
        const drop = new pg.Client({ connectionString: POSTGRES_URL })
        await drop.connect()
        await drop.query(`DROP SCHEMA ${id} CASCADE`)
        await drop.end()
      },
    }
  },
}

const mariadbConnection = (database?: string) => {
  const url = new URL(MARIADB_URL.replace(/^mariadb:/, 'mysql:'))
  return mysql.createConnection({ host: url.hostname, port: Number(url.port || 3306), user: decodeURIComponent(url.username), password: decodeURIComponent(url.password), database: database ?? url.pathname.slice(1), multipleStatements: false })
}

const mariadbUnavailable = await probe(async () => (await mariadbConnection()).end(), `MariaDB at ${MARIADB_URL}`)

const mariadb: TestDatabase = {
  name: 'mariadb',
  unavailable: mariadbUnavailable,
  async create() {
    const id = uniqueId()
    const bootstrap = await mariadbConnection()
    await bootstrap.query(`CREATE DATABASE ${id}`)
    await bootstrap.end()
    const admin = async (sql: string) => {
      const connection = await mariadbConnection(id)
      try {
        for (const statement of splitMariadbScript(sql)) await connection.query(statement)
      } finally {
        await connection.end()
      }
    }
    await admin(readFileSync(packageFile('procedures/mariadb/securitylogging.sql'), 'utf8'))
    const url = MARIADB_URL.replace(/\/[^/]*$/, `/${id}`)
    const client = createMariadbClient({ url, poolSize: 4 })
    return {
      client,
      properties: { 'security.logging.proc': 'securitylogging', 'security.logging.db': url },
      proc: 'securitylogging',
      table: '`securitylog`',
      id,
      admin,
      async teardown() {
        await client.close()
        const drop = await mariadbConnection()
        await drop.query(`DROP DATABASE ${id}`)
        await drop.end()
      },
    }
  },
}

/** Every backend; the embedded store always runs, the servers wherever they are reachable. */
export const DATABASES: readonly TestDatabase[] = [pglite, postgres, mariadb]

/**
 * A namespace of its own for each test of the enclosing `describe`, torn down after it. The object
 * stands for the running test's namespace, so tests read `ns.client` as they would their own.
 */
export function namespacePerTest(db: TestDatabase): TestNamespace {
  let current: TestNamespace | undefined
  beforeEach(async () => {
    current = await db.create()
  })
  afterEach(async () => {
    await current?.teardown()
    current = undefined
  })
  const now = (): TestNamespace => {
    if (current === undefined) throw new Error(`no ${db.name} namespace outside a test`)
    return current
  }
  return {
    get client() { return now().client },
    get properties() { return now().properties },
    get proc() { return now().proc },
    get table() { return now().table },
    get id() { return now().id },
    admin: (sql) => now().admin(sql),
    teardown: () => now().teardown(),
  }
}
