// Serves the demo page on 127.0.0.1 (scripts/web-demo.sh runs it):
//   node web/demo/serve.mjs <wasm build dir> [port]      -> http://127.0.0.1:8080/demo/
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const buildDir = path.resolve(process.argv[2] || 'build/wasm');
const port = Number(process.argv[3] || process.env.PORT || 8080);
const demoJs = path.join(buildDir, 'web/demo/demo.js');
if (!fs.existsSync(demoJs)) {
  console.error(`serve: ${demoJs} is missing: build the wasm preset first (scripts/web-demo.sh does)`);
  process.exit(1);
}

http.createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (url.pathname === '/' || url.pathname === '/demo') {
    res.writeHead(302, {Location: '/demo/'});
    res.end();
  } else if (url.pathname === '/demo/') {
    res.writeHead(200, {'Content-Type': 'text/html'});
    fs.createReadStream(path.join(here, 'index.html')).pipe(res);
  } else if (url.pathname === '/demo/demo.js') {
    res.writeHead(200, {'Content-Type': 'text/javascript'});
    fs.createReadStream(demoJs).pipe(res);
  } else if (url.pathname === '/demo/quote.json') {
    res.writeHead(200, {'Content-Type': 'application/json', 'Cache-Control': 'no-store'});
    res.end(JSON.stringify({quote: 'Simple is better than complex.', served: new Date().toISOString()}));
  } else {
    res.writeHead(404, {'Content-Type': 'text/plain'});
    res.end('not found');
  }
}).listen(port, '127.0.0.1', () => {
  console.log(`duet web demo: http://127.0.0.1:${port}/demo/  (Ctrl+C stops the server)`);
});
