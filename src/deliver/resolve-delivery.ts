import type { Sink } from '../types.js'
import type { AuthtrailConfig } from '../config/load-config.js'
import { ConfigError, CONFIG_KEYS } from '../config/load-config.js'
import type { Logger } from '../logger.js'
import { packageFile } from '../package-files.js'
import { openEmbeddedStore } from './pglite/embedded-store.js'
import type { EmbeddedStore } from './pglite/embedded-store.js'
import { loadScriptSink } from './script/script-sink.js'

/** Where events go, and the store to read them back from when there is one. */
export interface Delivery {
  readonly sink: Sink
  readonly store: EmbeddedStore | undefined
}

/**
 * Resolves `security.logging.proc` the way Showcase did, by its suffix: `.js`/`.mjs`/`.ts` is a script in
 * `proceduresDir`, any other name a stored procedure in the configured database. Returns undefined when
 * logging is off; throws a {@link ConfigError} naming file, key and value when the name resolves to nothing.
 */
export async function resolveDelivery(config: AuthtrailConfig, proceduresDir: string, logger: Logger): Promise<Delivery | undefined> {
  switch (config.procKind) {
    case 'off':
      return undefined
    case 'script':
      return { sink: await loadScriptSink(config, proceduresDir, logger), store: undefined }
    case 'stored-procedure': {
      const store = await openEmbeddedStore({
        dir: config.embeddedDir,
        schema: config.schema,
        table: config.table,
        installFile: packageFile('procedures/securitylogging.sql'),
        serve: true,
      })
      if (!(await store.procedureExists(config.proc))) {
        await store.close()
        throw new ConfigError(
          `authtrail: ${config.file}: key "${CONFIG_KEYS.proc}" = ${JSON.stringify(config.proc)} names neither a script (.js, .mjs, .ts) in ${proceduresDir} nor a procedure in the embedded store ${config.embeddedDir} (it has ${config.schema}.securitylogging from procedures/securitylogging.sql)`,
        )
      }
      return { sink: store.sink(config.proc), store }
    }
  }
}
