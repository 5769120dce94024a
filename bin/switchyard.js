#!/usr/bin/env node
'use strict';
const fs = require('node:fs');
const path = require('node:path');

// In a clone that was never built (`npm install` builds nothing: an installed package ships
// dist/), the first command builds it.
const main = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
if (!fs.existsSync(main) && fs.existsSync(path.join(__dirname, '..', 'tsconfig.build.json'))) {
  process.stderr.write('switchyard: no build in this clone yet, building dist/ first (npm run build)\n');
  const status = require('./build.js').build();
  if (status !== 0) process.exit(status);
}
require(main).main(process.argv.slice(2));
