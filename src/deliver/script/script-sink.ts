import { existsSync } from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { tsImport } from 'tsx/esm/api'
import type { AuditEventType, Sink } from '../../types.js'
import { DeliveryError } from '../../types.js'
import { ConfigError, CONFIG_KEYS } from '../../config/load-config.js'
import type { AuthtrailConfig } from '../../config/load-config.js'
import type { Logger } from '../../logger.js'
import { createDescriber, describeBatch } from '../../describe/event-xml.js'

/**
 * What a script procedure receives besides Showcase's three arguments, as Showcase handed celesta and
 * jython scripts a context.
 */
export interface ProcedureContext {
  readonly eventId: string
  readonly type: AuditEventType
  /** When the event happened. */
  readonly time: Date
  readonly username: string
  /** As stored: a keyed hash unless security.logging.sessionid = raw. */
  readonly sessionId: string
  readonly ip: string
  /** Every property of the properties file, for the script's own settings. */
  readonly properties: Readonly<Record<string, string>>
  /** authtrail's logger; lines start with "authtrail: ". */
  readonly logger: Logger
}

/**
 * A script procedure: `(sessionContext, data, type, context) => void | Promise<void>`. Throwing (or
 * rejecting) means the event was not stored and is retried.
 * @example
 * // procedures/my-logger.mjs
 * export default async function securitylogging(sessionContext, data, type, context) {
 *   await appendFile('audit.xml', `<event type="${type}">${sessionContext}${data}</event>\n`)
 * }
 */
export type ScriptProcedure = (sessionContext: string, data: string, type: AuditEventType, context: ProcedureContext) => unknown

/**
 * Loads `security.logging.proc` from `proceduresDir`. The module's default export is the procedure;
 * failing that, an export named like the file (`my-logger.mjs` → `myLogger` or `my_logger`) or
 * `securitylogging`.
 */
export async function loadScriptSink(config: AuthtrailConfig, proceduresDir: string, logger: Logger): Promise<Sink> {
  const file = path.resolve(proceduresDir, config.proc)
  const fail = (why: string): never => {
    throw new ConfigError(`authtrail: ${config.file}: key "${CONFIG_KEYS.proc}" = ${JSON.stringify(config.proc)}: ${why}`)
  }
  if (!file.startsWith(path.resolve(proceduresDir) + path.sep)) fail(`the script must be inside ${proceduresDir}`)
  if (!existsSync(file)) fail(`no script ${file} (scripts are looked up in ${proceduresDir})`)
  let module: Record<string, unknown>
  try {
    const url = pathToFileURL(file).href
    // Node 20 cannot import TypeScript; tsx compiles a .ts procedure on load.
    module = file.endsWith('.ts') ? await tsImport(url, import.meta.url) : await import(url)
  } catch (err) {
    return fail(`the script failed to load: ${(err as Error).message}`)
  }
  const base = path.basename(file).replace(/\.(js|mjs|ts)$/, '')
  const camel = base.replace(/[-_.](\w)/g, (_, c: string) => c.toUpperCase())
  const candidates = [module.default, module[camel], module[base.replace(/\W/g, '_')], module.securitylogging]
  const procedure = candidates.find((c): c is ScriptProcedure => typeof c === 'function')
  if (!procedure) fail(`the script exports no function (expected a default export, "${camel}" or "securitylogging")`)
  const run = procedure as ScriptProcedure
  // A script runs on the app's thread (it is the app's own code), so its events are described there too.
  const describe = createDescriber()

  return {
    description: `script ${file}`,
    async deliver(events) {
      const { described, failed } = describeBatch(events, describe)
      // One at a time, in order: a script may append to a file or keep state between calls.
      for (const { event, sessionContext, data } of described) {
        try {
          await run(sessionContext, data, event.type, {
            eventId: event.id,
            type: event.type,
            time: new Date(event.time),
            username: event.username,
            sessionId: event.sessionId,
            ip: event.ip,
            properties: config.properties,
            logger,
          })
        } catch (err) {
          failed.set(event.id, err instanceof Error ? err : new Error(String(err)))
        }
      }
      if (failed.size > 0) throw new DeliveryError(`${failed.size} of ${events.length} events rejected by ${file}`, failed)
    },
    close: async () => {},
  }
}
