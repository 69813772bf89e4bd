// Production entry (`npm start`): configured only by the environment.
import closeWithGrace from 'close-with-grace'
import { ConfigError, loadConfig } from './config.js'
import { startGateway } from './start.js'

let config
try {
  config = loadConfig()
} catch (err) {
  console.error(err instanceof ConfigError ? `configuration error: ${err.message}` : err)
  process.exit(2)
}

const { app } = await startGateway({ config })

closeWithGrace({ delay: config.shutdownGraceMs }, async ({ signal, err }) => {
  if (err) app.log.error({ err }, 'fatal error; shutting down')
  else app.log.info({ signal }, 'shutting down')
  await app.close()
})
