# One image for gateways and workers: `node bin/switchyard.js gateway|worker --app ...`.
FROM node:20-slim
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY proto ./proto
COPY bin ./bin
COPY shared ./shared
COPY server ./server
COPY worker ./worker
COPY client ./client
COPY cli ./cli
COPY examples ./examples
COPY bench ./bench
RUN npm ci --no-audit --no-fund && npm prune --omit=dev
ENV NODE_ENV=production
EXPOSE 50051 9464 9465
ENTRYPOINT ["node", "bin/switchyard.js"]
