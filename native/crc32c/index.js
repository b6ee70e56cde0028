'use strict';
// spindle-crc32c: the addon built from src/crc32c.c by node-gyp at install
// (npm runs it for a package with binding.gyp). Node-API only, so the same
// build loads in Node and in Electron. See index.d.ts for the functions.
module.exports = require('./build/Release/crc32c.node');
