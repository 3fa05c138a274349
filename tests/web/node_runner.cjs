// Runs a web test program (tests/web/web_test.cpp, built as one .js file)
// under Node with the web driver as a guest of Node's event loop:
//   node tests/web/node_runner.cjs build/wasm/tests/web_test.js
// Exit status: 0 when every case passed.
'use strict';
const path = require('path');
const {createTestServer} = require('./test_server.cjs');
require('./helpers.js');

const server = createTestServer();
globalThis.duetTestServer = new Promise((resolve) => {
  server.listen(0, '127.0.0.1', () => resolve('http://127.0.0.1:' + server.address().port));
});
globalThis.duetTestReport = (results) => {
  process.exit(results.failed === 0 && results.passed > 0 ? 0 : 1);
};
setTimeout(() => {
  console.error('node_runner: no report after 120 s');
  process.exit(2);
}, 120000).unref();
if (process.env.DUET_WEB_TEST_FILTER) globalThis.duetTestFilter = process.env.DUET_WEB_TEST_FILTER;
globalThis.duetModule = require(path.resolve(process.argv[2]));
