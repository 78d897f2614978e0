import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openEmbeddedStore } from '../../src/deliver/pglite/embedded-store.js'
import type { EmbeddedStore } from '../../src/deliver/pglite/embedded-store.js'
import { createDescriber } from '../../src/describe/event-xml.js'
import { packageFile } from '../../src/package-files.js'
import { DeliveryError } from '../../src/types.js'
import { auditEvent } from '../helpers/audit-event.js'
import { tempProject } from '../helpers/temp-project.js'
import type { TempProject } from '../helpers/temp-project.js'

const describeEvent = createDescriber()

describe('the embedded store calls the logging procedure', () => {
  let project: TempProject
  let store: EmbeddedStore

  beforeEach(async () => {
    project = tempProject()
    // The shipped SQL, plus a user's own procedure of the same signature with a different body.
    const sql = project.write(
      'install.sql',
      `${await import('node:fs').then((fs) => fs.readFileSync(packageFile('procedures/securitylogging.sql'), 'utf8'))}
CREATE TABLE IF NOT EXISTS my_log (n serial PRIMARY KEY, kind text, who text);
CREATE OR REPLACE PROCEDURE my_logging(session_context xml, data xml, type varchar) LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
  IF (xpath('/data/UserName/text()', data))[1]::text = 'poison' THEN RAISE EXCEPTION 'refusing %', type; END IF;
  INSERT INTO my_log (kind, who) VALUES (type, (xpath('/sessioncontext/username/text()', session_context))[1]::text);
END $$;`,
    )
    store = await openEmbeddedStore({ dir: path.join(project.dir, 'data'), schema: 'dbo', table: 'dbo.securitylog', installFile: sql, serve: false })
  })
  afterEach(async () => {
    await store?.close()
    project?.remove()
  })

  it('stores a whole batch in order through the shipped procedure, once per event id', async () => {
    const events = Array.from({ length: 50 }, (_, i) => auditEvent('LOGIN', { username: `user${i}`, time: Date.UTC(2026, 0, 1, 0, 0, i) }))
    const sink = store.sink('dbo.securitylogging')
    await sink.deliver(events.map(describeEvent))
    // A replay of the same events (a retry after a lost acknowledgement) stores nothing twice.
    await sink.deliver(events.map(describeEvent))
    const rows = await store.query({ limit: 100 })
    expect(rows).toHaveLength(50)
    expect(rows.map((r) => r.username)).toEqual(events.map((e) => e.username).reverse())
  })

  it('calls a user procedure with the same signature, not the table behind it', async () => {
    const sink = store.sink('dbo.my_logging')
    await sink.deliver([auditEvent('LOGIN', { username: 'ann' }), auditEvent('LOGOUT', { username: 'ann' })].map(describeEvent))
    // The shipped table stays empty: the user's body decided where the events went.
    expect(await store.query({})).toEqual([])
    expect(await store.procedureExists('dbo.my_logging')).toBe(true)
    expect(await store.procedureExists('dbo.nothing_here')).toBe(false)
  })

  it('rejects only the event the procedure refuses; the rest of the batch is stored', async () => {
    const good = [auditEvent('LOGIN', { username: 'a' }), auditEvent('LOGIN', { username: 'b' })]
    const poison = auditEvent('LOGIN', { username: 'poison' })
    const sink = store.sink('dbo.my_logging')
    const error = await sink.deliver([good[0]!, poison, good[1]!].map(describeEvent)).catch((err: unknown) => err)
    expect(error).toBeInstanceOf(DeliveryError)
    expect([...(error as DeliveryError).failed.keys()]).toEqual([poison.id])
    expect((error as DeliveryError).failed.get(poison.id)!.message).toContain('refusing LOGIN')
  })
})
