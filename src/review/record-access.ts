import os from 'node:os'
import { resolveMariadbRoutine } from '../deliver/mariadb/mariadb-procedure.js'
import type { SqlClient } from '../deliver/sql-client.js'
import { detachedEvent, NO_USER } from '../capture/request-facts.js'
import { createDescriber } from '../describe/event-xml.js'
import type { AuditAccess, AuditEvent } from '../types.js'

/** Showcase's three arguments of the logging procedure. */
export interface ProcedureArguments {
  readonly sessionContext: string
  readonly data: string
  readonly type: string
}

/** A procedure name as the config validated it (`dbo.securitylogging`); it goes into SQL text. */
const PROCEDURE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$/

/**
 * Calls the configured logging procedure once, positionally, the way the app's delivery does, so a
 * procedure of the operator's own receives the CLI's AUDIT_ACCESS records like every other event.
 */
export async function callLoggingProcedure(client: SqlClient, proc: string, event: ProcedureArguments): Promise<void> {
  if (!PROCEDURE_NAME.test(proc)) throw new Error(`authtrail: invalid procedure name ${JSON.stringify(proc)}`)
  if (client.dialect === 'postgres') {
    await client.query(`CALL ${proc}($1::xml, $2::xml, $3)`, [event.sessionContext, event.data, event.type])
    return
  }
  const routine = await resolveMariadbRoutine(client, proc)
  if (routine === undefined) throw new Error(`authtrail: ${client.description} has no procedure ${proc}`)
  await client.query(`CALL ${routine}(?, ?, ?)`, [event.sessionContext, event.data, event.type])
}

/**
 * The AUDIT_ACCESS event of a command-line read: the user is the operating-system account that ran it
 * (the CLI has no signed-in user; the database account is often shared), the host is the machine.
 */
export function cliAccessEvent(access: Omit<AuditAccess, 'channel'>, now: number = Date.now()): AuditEvent {
  let account = ''
  try {
    account = os.userInfo().username
  } catch {
    // No passwd entry for this uid (some containers): the uid itself still says who.
    account = `uid ${process.getuid?.() ?? '?'}`
  }
  const event = detachedEvent('AUDIT_ACCESS', now, '', { ...NO_USER, username: account }, '', '')
  return { ...event, host: os.hostname(), access: { ...access, channel: 'cli' } }
}

/** Builds the procedure's arguments for an event. */
export function procedureArguments(event: AuditEvent): ProcedureArguments {
  const described = createDescriber(1)(event)
  return { sessionContext: described.sessionContext, data: described.data, type: event.type }
}
