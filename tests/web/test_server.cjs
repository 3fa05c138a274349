// The HTTP server the fetch tests talk to (127.0.0.1 only), shared by the
// Node runner and the browser runner (which adds its static files).
//   GET  /hello    200 "hello from the test server", X-Duet-Test: yes
//   POST /echo     200, the request body back
//   GET  /slow     answers after 5 s; a client that goes away first counts
//   GET  /stats    the number of /slow requests aborted by the client
//   anything else  404 (or the fallback given)
'use strict';
const http = require('http');

function createTestServer(fallback) {
  let aborted = 0;
  return http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname === '/hello') {
      res.writeHead(200, {'Content-Type': 'text/plain', 'X-Duet-Test': 'yes'});
      res.end('hello from the test server');
    } else if (url.pathname === '/echo' && req.method === 'POST') {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        res.writeHead(200, {'Content-Type': 'application/octet-stream'});
        res.end(Buffer.concat(chunks));
      });
    } else if (url.pathname === '/slow') {
      const timer = setTimeout(() => { res.writeHead(200); res.end('slow'); }, 5000);
      res.on('close', () => {
        if (!res.writableEnded) { aborted++; clearTimeout(timer); }
      });
    } else if (url.pathname === '/stats') {
      res.writeHead(200, {'Content-Type': 'text/plain', 'Cache-Control': 'no-store'});
      res.end(String(aborted));
    } else if (fallback) {
      fallback(req, res, url);
    } else {
      res.writeHead(404, {'Content-Type': 'text/plain'});
      res.end('not found');
    }
  });
}

module.exports = {createTestServer};
