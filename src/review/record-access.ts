import os from 'node:os'
import type { AuthtrailConfig } from '../config/load-config.js'
import { openProcedureSink } from '../deliver/open-procedure-sink.js'
import { openChainedCalls, resolveChainSettings } from '../deliver/postgres/postgres-chain.js'
import type { SqlClient } from '../deliver/sql-client.js'
import { detachedEvent, NO_USER } from '../capture/request-facts.js'
import type { AuditAccess, AuditEvent } from '../types.js'

/**
 * Stores one event through the configured logging procedure, the way the app's delivery does (so a
 * procedure of the operator's own receives the CLI's AUDIT_ACCESS records like every other event). With
 * tamper evidence on, the event goes through `<procedure>_chained` on a chain of its own, closed by a
 * final checkpoint at once: an unchained row would be reported by verify as inserted behind
 * authtrail's back. The chain keys then come from this environment; without them nothing is stored and
 * the ConfigError says which variable is missing.
 */
export async function recordThroughProcedure(client: SqlClient, config: AuthtrailConfig, env: Readonly<Record<string, string | undefined>>, event: AuditEvent): Promise<void> {
  if (config.procKind !== 'stored-procedure') throw new Error(`authtrail: ${config.file}: key "security.logging.proc" names no stored procedure, so the CLI cannot record its reads`)
  const settings = client.dialect === 'postgres' ? resolveChainSettings(config, env) : undefined
  const chained = settings ? await openChainedCalls(client, config.proc, settings, { info: () => {}, warn: () => {} }) : undefined
  const sink = await openProcedureSink(client, config.proc, async () => {}, undefined, chained)
  if (!sink) throw new Error(`authtrail: ${client.description} has no procedure ${config.proc}`)
  try {
    await sink.deliver([event])
  } finally {
    await sink.close()
  }
}

/**
 * The AUDIT_ACCESS event of a command-line read: the user is the operating-system account that ran it
 * (the CLI has no signed-in user; the database account is often shared), the host is the machine.
 */
export function cliAccessEvent(access: Omit<AuditAccess, 'channel'>, now: number = Date.now(), account: string = osAccount(), host: string = os.hostname()): AuditEvent {
  const event = detachedEvent('AUDIT_ACCESS', now, '', { ...NO_USER, username: account }, '', '')
  return { ...event, host, access: { ...access, channel: 'cli' } }
}

/** The operating-system account running this process. */
export function osAccount(): string {
  try {
    return os.userInfo().username
  } catch {
    // No passwd entry for this uid (some containers): the uid itself still says who.
    return `uid ${process.getuid?.() ?? '?'}`
  }
}
