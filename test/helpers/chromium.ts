import { chromium } from 'playwright-core'
import type { Browser } from 'playwright-core'

/** Debian's Chromium (apt-get install chromium); playwright-core never downloads a browser of its own. */
export const CHROMIUM = '/usr/bin/chromium'

/** Headless Chromium; playwright gives each launch a fresh temporary profile and removes it on close. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
}
