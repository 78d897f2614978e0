import type { Capture } from '../../capture/middleware.js'
import type { Logger } from '../../logger.js'
import type { AuditEvent } from '../../types.js'
import type { ViewSource } from './audit-views.js'
import { createAdminPage } from './admin-router.js'

/** The admin page's options of `authtrail()`. */
export interface AdminPageSettings {
  /**
   * Who may read the audit trail at {@link AdminPageSettings.adminPath}: gets the user passport put in
   * `req.user`. Without it the page is off (said once in the log).
   * @defaultValue undefined (no admin page)
   * @example isAdmin: (user) => user.roles.includes('security-officer')
   */
  readonly isAdmin?: (user: any) => boolean | Promise<boolean>
  /** Where the middleware serves the audit page. @defaultValue "/admin/audit" */
  readonly adminPath?: string
}

const PATH = /^(\/[A-Za-z0-9._~-]+)+$/

/** Checks the admin options once, at startup, naming the option and the value. */
export function checkAdminSettings(settings: AdminPageSettings): void {
  if (settings.isAdmin !== undefined && typeof settings.isAdmin !== 'function') {
    throw new TypeError(`authtrail: options.isAdmin must be a function (user) => boolean, not ${typeof settings.isAdmin}`)
  }
  const path = settings.adminPath
  if (path !== undefined && (!PATH.test(path) || path.split('/').some((part) => part === '.' || part === '..'))) {
    throw new TypeError(`authtrail: options.adminPath ${JSON.stringify(path)}: expected an absolute path without a trailing slash, like "/admin/audit"`)
  }
}

/** What the instance hands {@link mountAdminPage}. */
export interface AdminPageWiring {
  readonly capture: Capture
  /** The audit database, undefined for a script procedure. */
  readonly source: ViewSource | undefined
  /** authtrail's session key (the CSRF key is derived from it). */
  readonly key: Buffer
  /** The instance's own `record`: spooled, then delivered like every other event. */
  readonly record: (event: AuditEvent) => void
  readonly logger: Logger
}

/** The admin page's middleware, or undefined when it is off (and the log says why, once). */
export function mountAdminPage(settings: AdminPageSettings, wiring: AdminPageWiring): ReturnType<typeof createAdminPage> | undefined {
  const path = settings.adminPath ?? '/admin/audit'
  if (settings.isAdmin === undefined) {
    wiring.logger.info(`the audit page is off: pass isAdmin(user) to authtrail() to serve it at ${path}`)
    return undefined
  }
  if (wiring.source === undefined) {
    wiring.logger.warn(`the audit page at ${path} is off: it reads the audit table of a stored procedure, and security.logging.proc names a script`)
    return undefined
  }
  const { capture } = wiring
  return createAdminPage({
    path,
    isAdmin: settings.isAdmin,
    source: wiring.source,
    userOf: capture.userOf,
    usernameOf: capture.usernameOf,
    key: wiring.key,
    record: (req, access) => wiring.record({ ...capture.requestEvent('AUDIT_ACCESS', req), access: { ...access, channel: 'web' } }),
    logger: wiring.logger,
  })
}
