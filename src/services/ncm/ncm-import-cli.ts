// `npm run ncm:import -- <file or URL>`: replace the NCM table of DATABASE_URL with a Siscomex
// JSON file (gzipped or not), atomically; a bad file changes nothing and says why (exit 1).
// `npm run ncm:import-tipi -- <file>`: the same for the TIPI's IPI rates (CSV ncm;ex;aliquota).
import pg from 'pg'
import { environment } from '../../environment.js'
import { importNcmFrom } from './ncm-import.js'
import { importTipiFrom } from './tipi-import.js'

const [mode, source] = process.argv.slice(2)
const url = environment().DATABASE_URL
if (!url) {
  console.error('DATABASE_URL is not set')
  process.exit(2)
}
if (!source || (mode !== 'ncm' && mode !== 'tipi')) {
  console.error(mode === 'tipi' ? 'usage: npm run ncm:import-tipi -- <file.csv>' : 'usage: npm run ncm:import -- <file or http(s) URL of the Siscomex NCM JSON>')
  process.exit(2)
}
const pool = new pg.Pool({ connectionString: url, max: 1, connectionTimeoutMillis: 10_000 })
try {
  if (mode === 'ncm') {
    const result = await importNcmFrom(pool, source)
    console.log(`imported ${result.entries} NCM entries (${result.items} 8-digit items) in ${Math.round(result.ms)} ms; table version: ${result.table_version}`)
  } else {
    const result = await importTipiFrom(pool, source)
    console.log(`imported ${result.rows} IPI rates (${result.unknown_ncm} of NCM codes not in the table) in ${Math.round(result.ms)} ms`)
  }
} catch (err) {
  console.error(`${mode === 'ncm' ? 'NCM' : 'TIPI'} import failed, nothing changed: ${(err as Error).message}`)
  process.exitCode = 1
} finally {
  await pool.end()
}
