import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { DATABASES } from '../helpers/databases.js'
import type { TestNamespace } from '../helpers/databases.js'

const mariadb = DATABASES.find((db) => db.name === 'mariadb')!

describe.skipIf(mariadb.unavailable !== undefined)('MariaDB past max_allowed_packet', () => {
  let ns: TestNamespace
  let maxPacket: number
  beforeEach(async () => {
    ns = await mariadb.create()
    maxPacket = Number((await ns.client.query<{ max: unknown }>('SELECT @@max_allowed_packet AS max'))[0]!.max)
  })
  afterEach(async () => {
    await ns?.teardown()
  })

  it('leaves the pool usable after the server hung up on a statement too large', async () => {
    const tooLong = await ns.client.query('SELECT LENGTH(?) AS n', ['a'.repeat(maxPacket)]).catch((e: unknown) => e)
    expect((tooLong as { errno?: unknown }).errno).toBe(1153)
    for (let i = 0; i < 4; i++) expect(await ns.client.query('SELECT 1 AS one')).toEqual([{ one: 1 }])
  })
})
