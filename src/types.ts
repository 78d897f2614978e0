/**
 * The event types authtrail records. The first four are Showcase's; a procedure written for Showcase
 * receives exactly these names in its `type` parameter. SESSIONEND is an authenticated session that ended
 * neither by logout nor by idle expiry (a new login over it, the absolute lifetime, the app destroying it),
 * with the reason in `<data><Reason>`. LOGOUTERROR is a logout that failed and left the user signed in
 * (the session store did not save it): the session is still valid, so an auditor must not read the
 * attempt as the end of it. AUDIT_GAP says that events were not durably
 * spooled for a while (the disk refused the spool), with how many and when. LOCKOUT says that a user or an
 * address reached the failed-login threshold (security.logging.bruteforce.*), like the user_block_attempts
 * of Showcase's example script. AUDIT_ACCESS is an administrator reading, exporting or purging the audit
 * trail itself (admin page or CLI).
 */
export const AUDIT_EVENT_TYPES = ['LOGIN', 'LOGINERROR', 'LOGOUT', 'SESSIONTIMEOUT', 'SESSIONEND', 'LOGOUTERROR', 'AUDIT_GAP', 'LOCKOUT', 'AUDIT_ACCESS'] as const

/** One of {@link AUDIT_EVENT_TYPES}. */
export type AuditEventType = (typeof AUDIT_EVENT_TYPES)[number]

/** What an administrator did with the audit trail, recorded as AUDIT_ACCESS. */
export const AUDIT_ACCESS_ACTIONS = ['view', 'export', 'purge', 'query', 'stats', 'tail'] as const
export type AuditAccessAction = (typeof AUDIT_ACCESS_ACTIONS)[number]

/** The facts of an AUDIT_ACCESS event: who is the event's user; what, through which door, how many rows. */
export interface AuditAccess {
  readonly action: AuditAccessAction
  /** The filter or view as one line of text (see review/audit-filter.ts describeFilter). */
  readonly filter: string
  /** Rows shown, exported or removed. */
  readonly rows: number
  /** `web` for the admin page, `cli` for the command line. */
  readonly channel: 'web' | 'cli'
}

/**
 * Profile fields of Showcase's `<sessioncontext>` that an app may fill from its user object
 * (see `AuthtrailOptions.describeUser`). Missing fields become empty elements.
 */
export interface UserProfile {
  readonly email?: string
  readonly fullusername?: string
  readonly phone?: string
  readonly snils?: string
  readonly firstname?: string
  readonly lastname?: string
  readonly middlename?: string
  readonly gender?: string
  readonly birthdate?: string
  readonly birthplace?: string
}

/**
 * The facts recorded on the request path: one fixed-shape object per event, cheap to build.
 * User-Agent parsing and XML happen later, off the request path (see `describe/`).
 * `sessionId` is already a keyed hash unless the operator chose raw ids.
 */
export interface AuditEvent {
  /** Unique id, so a replayed delivery never makes a second row. */
  readonly id: string
  readonly type: AuditEventType
  /** Epoch milliseconds, taken when the event happened (not when it was delivered). */
  readonly time: number
  readonly sessionId: string
  /** The login name: the authenticated user's, or for LOGINERROR the name that was submitted. */
  readonly username: string
  /** The app's id for the user (Showcase's `sid`), empty when unknown. */
  readonly userId: string
  /** `req.ip`: X-Forwarded-For counts only under Express's `trust proxy`. */
  readonly ip: string
  /** Client host name; authtrail does no reverse DNS on the request path, so this is the client address. */
  readonly host: string
  /** The User-Agent header, truncated to the configured limit; empty when absent. */
  readonly userAgent: string
  /** Login method for LOGINERROR (`FORM` for a form login), empty otherwise. */
  readonly method: string
  /**
   * Failure message for LOGINERROR (e.g. passport-local's "Incorrect password."), authtrail's fixed text
   * for LOGOUTERROR, the reason for SESSIONEND and AUDIT_GAP.
   */
  readonly message: string
  /** Query-string parameters of the request, sensitive names and the password removed. */
  readonly urlParams: ReadonlyArray<readonly [string, string]>
  readonly profile: UserProfile
  /** For AUDIT_GAP: how many events were kept in memory only, between which times (epoch ms). */
  readonly gap?: { readonly events: number; readonly from: number; readonly to: number }
  /** For AUDIT_ACCESS: what the administrator read, exported or purged. */
  readonly access?: AuditAccess
  /** For LOGIN: failed logins of this user in the brute-force window before it succeeded (absent when none). */
  readonly priorFailures?: number
  /** For LOCKOUT: what reached the threshold, with how many failures in which window, and until when it is blocked. */
  readonly lockout?: LockoutFacts
}

/** The facts of a LOCKOUT. The user or address itself is the event's `username` or `ip`. */
export interface LockoutFacts {
  /** `user`: failures for one username; `ip`: failures from one address. */
  readonly scope: 'user' | 'ip'
  readonly attempts: number
  readonly windowSeconds: number
  /** Epoch ms until which attempts are refused (when `enforced`) or would be. */
  readonly until: number
  /** Whether logins are refused (security.logging.bruteforce.block = true) or the lockout is only recorded. */
  readonly enforced: boolean
}

/** An event turned into the three arguments of the logging procedure, plus its identity. */
export interface DescribedEvent {
  readonly event: AuditEvent
  /** `<sessioncontext>` document. */
  readonly sessionContext: string
  /** `<data>` document. */
  readonly data: string
}

/**
 * Where events go: a stored procedure or a script module. The sink describes each event (builds its
 * XML) itself, so that this work happens where the sink runs: for a database, in its worker thread.
 * `deliver` resolves when every event in the batch is stored; it rejects with a {@link DeliveryError}
 * to say which ones were not.
 */
export interface Sink {
  readonly description: string
  deliver(batch: readonly AuditEvent[]): Promise<void>
  close(): Promise<void>
}

/**
 * Thrown by a sink when some events of a batch were not stored; the others were. An error in `failed`
 * with `permanent: true` (an event that cannot be described) is parked at once instead of retried.
 */
export class DeliveryError extends Error {
  constructor(
    message: string,
    /** Ids of the events that were not stored, with the error each one met. */
    readonly failed: ReadonlyMap<string, Error>,
  ) {
    super(message)
    this.name = 'DeliveryError'
  }
}
