import fp from 'fastify-plugin'
import multipart from '@fastify/multipart'
// From the pool module itself, not the index: pdfjs-dist (loaded by the extractor) replaces JSON.stringify
// and JSON.parse process-wide with slower polyfills, so only the extraction processes may load it.
import { createExtractionPool, type ExtractionPool } from '../../services/pdf/extraction-pool.js'

declare module 'fastify' {
  interface FastifyInstance {
    pdfExtraction: ExtractionPool
  }
}

/** Uploads (streamed, cut off at DOCUMENT_MAX_BYTES) and PDF extraction in child processes, within per-document budgets. */
export default fp(async (app) => {
  const { documents, extraction } = app.config
  await app.register(multipart, { limits: { fileSize: documents.maxBytes, files: 1, fields: 10, fieldSize: 1024, parts: 12 } })
  const pool = createExtractionPool({ maxPages: documents.maxPages, ...extraction })
  app.decorate('pdfExtraction', pool)
  app.addHook('onClose', () => pool.close())
}, { name: 'documents', dependencies: ['config'] })
