# Gatehouse container image (example: no container engine runs on the
# project's own machines; scripts/dockerfile-smoke.sh runs this file's build
# commands as a script in CI so they stay correct).
#
#   docker build -t gatehouse .
#   docker run -e NODE_ENV=production -e DATABASE_URL=… -e ISSUER=https://… \
#     -e COOKIE_SECRETS=… -e KEY_ENCRYPTION_KEY=… -e METRICS_TOKEN=… -p 3000:3000 gatehouse

# ---- build: install with dev dependencies, compile, then drop them
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build
# (npm keeps the prisma CLI and typescript: they are optional peers of
# @prisma/client. They are unused at run time.)
RUN npm prune --omit=dev --no-audit --no-fund

# ---- runtime: compiled code and production dependencies only, as a non-root user
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    PORT=3000 \
    HOST=0.0.0.0 \
    DATA_DIR=/tmp/gatehouse
WORKDIR /app
RUN groupadd --system --gid 10001 gatehouse \
 && useradd --system --uid 10001 --gid gatehouse --home-dir /app --shell /usr/sbin/nologin gatehouse
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
COPY --from=build /app/prisma ./prisma
COPY --from=build /app/views ./views
USER 10001:10001
EXPOSE 3000
# Liveness only; readiness (/readyz, database reachable) belongs to the orchestrator.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# The gatehouse binary itself is PID 1's child-free main process: it receives
# SIGTERM and drains in-flight requests before exiting.
ENTRYPOINT ["node", "bin/gatehouse.js"]
CMD ["serve"]
