import express from 'express'
import { createDemo } from '../../demo/app.js'
import type { Demo, DemoOptions } from '../../demo/app.js'
import { listen } from './browser-like-client.js'
import { memoryLogger, tempProject } from './temp-project.js'
import type { TempProject } from './temp-project.js'

/** The demo (Express 5) in this process, in a temp project with its embedded store, on a loopback port. */
export interface RunningDemo {
  readonly project: TempProject
  readonly demo: Demo
  readonly url: string
  readonly logger: ReturnType<typeof memoryLogger>
  close(): Promise<void>
}

/** `prepare` runs in the project before the demo starts (to seed its embedded store, say). */
export async function startRunningDemo(properties: Record<string, string> = {}, options: Partial<DemoOptions> = {}, prepare?: (project: TempProject) => Promise<void>): Promise<RunningDemo> {
  const project = tempProject(properties)
  await prepare?.(project)
  const logger = memoryLogger()
  const demo = await createDemo({ express, config: project.config, cwd: project.dir, sessionTimeoutSeconds: 60, logger, ...options })
  const server = await listen(demo.app)
  return {
    project,
    demo,
    url: server.url,
    logger,
    async close() {
      await server.close()
      await demo.audit.close()
      project.remove()
    },
  }
}
