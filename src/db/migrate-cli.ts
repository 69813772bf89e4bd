// `npm run migrate`: apply pending migrations to DATABASE_URL and exit.
import { migrate } from './migrate.js'
import { environment } from '../environment.js'

const url = environment().DATABASE_URL
if (!url) {
  console.error('DATABASE_URL is not set')
  process.exit(2)
}
try {
  const applied = await migrate(url)
  console.log(applied.length ? `applied migrations ${applied.join(', ')}` : 'database is up to date')
} catch (err) {
  console.error(`migration failed: ${(err as Error).message}`)
  process.exit(1)
}
