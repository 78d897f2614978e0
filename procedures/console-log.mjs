// An example script procedure: set security.logging.proc = console-log.mjs to use it.
// Receives Showcase's three arguments plus a context, like Showcase's celesta/jython procedures, and
// writes one JSON line per event to stdout (for a log shipper to pick up).
export default function consoleLog(sessionContext, data, type, context) {
  process.stdout.write(JSON.stringify({ time: context.time.toISOString(), type, username: context.username, ip: context.ip, sessionContext, data }) + '\n')
}
