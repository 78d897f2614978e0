/** Where authtrail writes its own messages. Every line it passes starts with "authtrail: ". */
export interface Logger {
  info(message: string): void
  warn(message: string): void
  error(message: string): void
}

/** The default logger: info to stdout, warnings and errors to stderr. */
export const consoleLogger: Logger = {
  info: (message) => console.log(message),
  warn: (message) => console.warn(message),
  error: (message) => console.error(message),
}

/** Prefixes every message with "authtrail: ", so operators can grep for them. */
export function prefixed(logger: Logger): Logger {
  return {
    info: (message) => logger.info(`authtrail: ${message}`),
    warn: (message) => logger.warn(`authtrail: ${message}`),
    error: (message) => logger.error(`authtrail: ${message}`),
  }
}
