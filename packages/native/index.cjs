'use strict';
// Loads the oneDNN kernels if build.mjs built them; otherwise `binding` is null and `why` says why.
const path = require('node:path');

let binding = null;
let why = '';
if (process.env.GANTRY_NATIVE === '0') {
  why = 'GANTRY_NATIVE=0';
} else {
  try {
    binding = require(path.join(__dirname, 'build', 'gantry_native.node'));
  } catch (e) {
    why =
      e && e.code === 'MODULE_NOT_FOUND'
        ? 'not built: install g++ and libdnnl-dev, then pnpm build'
        : String(e?.message).split('\n')[0];
  }
}
module.exports = { binding, why };
