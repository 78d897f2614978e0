import { describe, expect, it } from 'vitest'
import { csvCell, csvHeader, csvLine } from '../../src/review/export-csv.js'
import { parseCsv } from '../helpers/csv.js'

describe('CSV export cells', () => {
  it('quotes every cell and doubles quotes, keeping commas, CR and LF inside', () => {
    expect(csvCell('plain')).toBe('"plain"')
    expect(csvCell('say "hi", then\r\nleave')).toBe('"say ""hi"", then\r\nleave"')
    expect(csvCell(42)).toBe('"42"')
  })

  it('neutralises what a spreadsheet would run as a formula, and an apostrophe, with one leading apostrophe', () => {
    for (const value of ['=1+1', '+1', '-1', '@SUM(A1)', '\tx', '\rx', "'quoted"]) expect(csvCell(value)).toBe(`"'${value.replaceAll('"', '""')}"`)
    expect(csvCell('a=1')).toBe('"a=1"')
  })

  it('reads back to the stored values by dropping one leading apostrophe', () => {
    const row = { id: 7, time: '2026-11-24T10:00:00.000Z', type: 'LOGINERROR', username: '=HYPERLINK("x")', ip: "'1", session_id: 'S', data: '<data>a,"b"\r\n</data>', session_context: '<sessioncontext/>' }
    const [header, record] = parseCsv(csvHeader() + csvLine(row))
    expect(header).toEqual(['id', 'time', 'type', 'username', 'ip', 'session_id', 'data', 'session_context'])
    expect(record!.map((cell) => (cell.startsWith("'") ? cell.slice(1) : cell))).toEqual(Object.values(row).map(String))
  })
})
