# One image for gateways and workers: `node bin/switchyard.js gateway|worker --app ...`.
FROM node:20-slim
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json index.ts ./
COPY proto ./proto
COPY bin ./bin
COPY shared ./shared
COPY server ./server
COPY worker ./worker
COPY client ./client
COPY cli ./cli
COPY examples ./examples
# The build needs the dev dependencies (TypeScript), pruned after. bench/ is not copied, so
# tsc skips that include and dist/bench never exists.
RUN npm ci --no-audit --no-fund && npm run build && npm prune --omit=dev
ENV NODE_ENV=production
# Code stays owned by root, read-only to the process.
USER node
EXPOSE 50051 9464 9465
ENTRYPOINT ["node", "bin/switchyard.js"]
