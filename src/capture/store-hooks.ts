/** The part of an express-session store that authtrail wraps. */
export interface SessionStoreLike {
  destroy(sessionId: string, callback?: (err?: unknown) => void): void
}

/**
 * Wraps `store.destroy` so that a session the app destroys on purpose (`req.session.destroy()`, or the
 * regeneration passport does on login and logout) leaves the ledger and is never reported as a timeout.
 * Stores expire sessions without calling `destroy`, so expiry still reaches the sweep.
 * Returns a function that removes the wrapper.
 */
export function hookStoreDestroy(store: SessionStoreLike, ended: (sessionId: string) => void): () => void {
  const original = store.destroy
  let active = true
  const audited: SessionStoreLike['destroy'] = function (this: SessionStoreLike, sessionId, callback) {
    if (active) ended(sessionId)
    return original.call(this, sessionId, callback)
  }
  store.destroy = audited
  return () => {
    active = false
    if (store.destroy === audited) store.destroy = original
  }
}
