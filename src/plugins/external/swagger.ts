import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'

/** OpenAPI document built from the TypeBox schema of every route; Swagger UI at /docs unless switched off. */
export default fp(async (app) => {
  await app.register(swagger, {
    openapi: {
      info: { title: 'Nexa gateway', description: 'NCM classification of electronic parts, streamed live', version: '0.1.0' },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
          cookie: { type: 'apiKey', in: 'cookie', name: 'nexa_session' },
        },
      },
      security: [{ bearer: [] }, { cookie: [] }],
    },
  })
  if (app.config.docsEnabled) {
    await app.register(swaggerUi, { routePrefix: '/docs' })
  }
}, { name: 'swagger', dependencies: ['config'] })
