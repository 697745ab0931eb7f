# syntax=docker/dockerfile:1
#
# One image for the three processes; docker-compose.yml picks the command:
#   node dist/main/api.js          (default)
#   node dist/main/worker.js       (bundles workflow code from dist/workflows at start)
#   node dist/main/projections.js
#
# Build: docker build -t transfer-service .

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- deps: every dependency, for the TypeScript build ----
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund

# ---- build: tsc -p tsconfig.build.json -> dist/ ----
FROM deps AS build
COPY . .
RUN npm run build

# ---- runtime: production dependencies and dist/ only ----
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --no-audit --no-fund
COPY --from=build /app/dist ./dist
# The web console's static files (served by the API at /console).
COPY --from=build /app/console ./console
# The official node images ship an unprivileged `node` user (uid 1000).
USER node
EXPOSE 3000
CMD ["node", "dist/main/api.js"]
