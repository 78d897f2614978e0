/**
 * One page (100 rows, newest first) of the admin page's filtered views on 1,000,000 rows in PostgreSQL,
 * through the same queryAuditPage the page and the CLI use, over a real connection. Each view's median
 * is set against two baselines measured in the same run: the unfiltered newest page, and the same 100
 * rows fetched by primary key.
 *
 * The rows are made in the database with generate_series (no procedure calls): 30 days, 5,000 users,
 * IPv4 and IPv6 addresses plus some that are not addresses, the XML of the shipped procedure's shape.
 *
 * Run: npm run bench, or node --import tsx bench/audit-query.ts
 * (BENCH_ROWS 1000000, BENCH_REPEATS 21; BENCH_KEEP_SCHEMA=1 keeps the schema for EXPLAIN)
 */
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { createPostgresClient } from '../src/deliver/postgres/postgres-client.js'
import { encodeCursor, parseAuditFilter } from '../src/review/audit-filter.js'
import type { AuditFilter } from '../src/review/audit-filter.js'
import { buildAuditQuery, queryAuditPage } from '../src/review/audit-query.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const URL = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000)
const REPEATS = Number(process.env.BENCH_REPEATS ?? 21)
const DAYS = 30

/** Monthly partitions for the seeded range, as securitylog_add_partitions makes them for the future. */
function partitionsSql(schema: string, now: Date): string {
  const statements: string[] = []
  for (let back = 0; back <= Math.ceil(DAYS / 28); back++) {
    const from = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - back, 1))
    const to = new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth() + 1, 1))
    const name = `securitylog_${from.getUTCFullYear()}_${String(from.getUTCMonth() + 1).padStart(2, '0')}`
    statements.push(`CREATE TABLE IF NOT EXISTS ${schema}.${name} PARTITION OF ${schema}.securitylog FOR VALUES FROM ('${from.toISOString()}') TO ('${to.toISOString()}')`)
  }
  return statements.join(';\n')
}

/** 1,000,000 rows in one INSERT ... SELECT: the XML is built and parsed by PostgreSQL itself. */
function seedSql(schema: string): string {
  const spacing = (DAYS * 86_400) / ROWS
  return `INSERT INTO ${schema}.securitylog (event_id, time, type, username, ip, session_id, data, session_context)
SELECT gen_random_uuid(), t, ty, u, ip, sid,
  -- The addresses that are not addresses include markup, escaped in the XML as authtrail's builder does.
  ('<data><HttpSessionId>' || sid || '</HttpSessionId><UserName>' || u || '</UserName><Browser>CHROME</Browser><BrowserVersion>120.0</BrowserVersion><IP>' || xip ||
   '</IP><Host>' || xip || '</Host><OS>WINDOWS</OS><OSVersion>nt 10.0</OSVersion><UserAgent>mozilla/5.0 (windows nt 10.0; win64; x64) chrome/120.0 safari/537.36</UserAgent></data>')::xml,
  ('<sessioncontext><username>' || u || '</username><sid>' || (i % 5000) || '</sid><login>' || u || '</login><sessionid>' || sid || '</sessionid><email>' || u ||
   '@example.org</email><fullusername></fullusername><phone></phone><snils></snils><firstname></firstname><lastname></lastname><middlename></middlename><gender></gender><birthdate></birthdate><birthplace></birthplace><trusted></trusted><ip>' ||
   xip || '</ip><browsertype>CHROME</browsertype><browserversion>120.0</browserversion><userdata>default</userdata><related></related><eventid>' || gen_random_uuid() || '</eventid><eventtime>' || t || '</eventtime></sessioncontext>')::xml
FROM (
  SELECT i, now() - (i * ${spacing}) * interval '1 second' AS t,
    (ARRAY['LOGIN','LOGINERROR','LOGOUT','SESSIONTIMEOUT','LOGIN'])[1 + i % 5] AS ty,
    'user' || (i % 5000) AS u,
    CASE WHEN i % 997 = 0 THEN (ARRAY['', 'unknown', '10.1.2', '<script>'])[1 + i % 4]
         WHEN i % 10 = 0 THEN '2001:db8:' || to_hex(i % 65536) || '::' || to_hex(i % 4093)
         ELSE '10.' || (i % 256) || '.' || ((i / 256) % 256) || '.' || ((i / 65536) % 256) END AS ip,
    upper(md5(i::text)) AS sid
  FROM generate_series(1, ${ROWS}) AS i
) AS g, LATERAL (SELECT replace(replace(replace(ip, '&', '&amp;'), '<', '&lt;'), '>', '&gt;') AS xip) AS x`
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

export async function benchAuditQuery(): Promise<Array<Record<string, string | number>>> {
  const admin = new pg.Client({ connectionString: URL })
  await admin.connect()
  const schema = `bench_q_${Date.now().toString(36)}_${randomBytes(2).toString('hex')}`
  const client = createPostgresClient({ url: URL, poolSize: 1 })
  try {
    let started = performance.now()
    await admin.query(`CREATE SCHEMA ${schema}; SET search_path TO ${schema}`)
    await admin.query(readFileSync(path.join(ROOT, 'procedures/securitylogging.sql'), 'utf8'))
    await admin.query('SET search_path TO DEFAULT')
    await admin.query(partitionsSql(schema, new Date()))
    await admin.query(seedSql(schema))
    await admin.query(`VACUUM ANALYZE ${schema}.securitylog`)
    console.log(`seeded ${ROWS} rows into ${schema}.securitylog in ${((performance.now() - started) / 1000).toFixed(0)} s`)
    const table = `${schema}.securitylog`
    const parse = (params: Record<string, string>) => parseAuditFilter(params, { label: (name) => name })

    // A cursor 90% of the way down: the page an admin reaches after 9,000 clicks on "older".
    const deep = (await admin.query(`SELECT id::text AS id, to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS t FROM ${table} ORDER BY time DESC, id DESC OFFSET ${Math.floor(ROWS * 0.9)} LIMIT 1`)).rows[0]
    const since = new Date(Date.now() - 3 * 86_400_000).toISOString()
    const until = new Date(Date.now() - 2 * 86_400_000).toISOString()
    const views: Array<[string, AuditFilter]> = [
      ['unfiltered newest page (baseline)', parse({})],
      ['by user', parse({ user: 'user4242' })],
      ['by type', parse({ type: 'SESSIONTIMEOUT' })],
      ['by two types', parse({ type: 'LOGOUT,SESSIONTIMEOUT' })],
      ['by outcome (failure)', parse({ outcome: 'failure' })],
      ['by exact IP', parse({ ip: '10.7.3.0' })],
      ['by IPv4 network /16', parse({ ip: '10.7.0.0/16' })],
      ['by IPv4 network /8', parse({ ip: '10.0.0.0/8' })],
      ['by IPv6 network /48 (rare)', parse({ ip: '2001:db8:a::/48' })],
      ['by time range (one day, 2 days ago)', parse({ since, until })],
      ['deep keyset page (90% down)', parse({ before: encodeCursor({ time: deep.t, id: deep.id }) })],
      ['user + failure + deep in time', parse({ user: 'user4241', outcome: 'failure', until })],
    ]

    const time = async (work: () => Promise<unknown>): Promise<number> => {
      await work() // warm the cache and the connection
      const samples: number[] = []
      for (let i = 0; i < REPEATS; i++) {
        started = performance.now()
        await work()
        samples.push(performance.now() - started)
      }
      return median(samples)
    }
    // The same page of rows fetched by primary key (id, time): the cheapest way to get those rows at all.
    const newest = (await queryAuditPage(client, table, parse({}))).rows
    const byKey = await time(() => client.query(`SELECT id::text AS id, time, type, username, ip, session_id, data::text AS data, session_context::text AS session_context FROM ${table} WHERE id = ANY($1::bigint[])`, [newest.map((row) => row.id)]))
    const results: Array<Record<string, string | number>> = []
    let baseline = 0
    for (const [name, filter] of views) {
      const ms = await time(() => queryAuditPage(client, table, filter))
      if (baseline === 0) baseline = ms
      const page = await queryAuditPage(client, table, filter)
      const { text, params } = buildAuditQuery('postgres', table, filter, { extra: 1 })
      const plan = (await admin.query(`EXPLAIN (FORMAT JSON) ${text}`, params)).rows[0]['QUERY PLAN'][0].Plan
      results.push({
        view: name,
        rows: page.rows.length,
        'median ms': Number(ms.toFixed(2)),
        '× unfiltered page': Number((ms / baseline).toFixed(2)),
        '× same rows by key': Number((ms / byKey).toFixed(2)),
        indexes: [...new Set(JSON.stringify(plan).match(/"Index Name":"[^"]+"/g)?.map((m) => m.slice(14, -1).replace(/^securitylog_\d{4}_\d{2}_/, '')) ?? ['(none: scan)'])].join(' '),
      })
    }
    results.push({ view: 'the newest page\'s 100 rows by primary key (baseline)', rows: newest.length, 'median ms': Number(byKey.toFixed(2)), '× unfiltered page': Number((byKey / baseline).toFixed(2)), '× same rows by key': 1, indexes: 'pkey' })
    return results
  } finally {
    await client.close()
    if (!process.env.BENCH_KEEP_SCHEMA) await admin.query(`DROP SCHEMA ${schema} CASCADE`)
    await admin.end()
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  console.table(await benchAuditQuery())
}
