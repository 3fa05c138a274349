// The HTTP server the fetch tests talk to (127.0.0.1 only), shared by the
// Node runner and the browser runner (which adds its static files).
//   GET  /hello    200 "hello from the test server", X-Duet-Test: yes
//   POST /echo     200, the request body back
//   GET  /slow     answers after 5 s; a client that goes away first counts
//   GET  /stats    the number of /slow requests aborted by the client
//   anything else  404 (or the fallback given)
//   WebSocket /ws  echoes text and binary messages; "burst:N" answers with
//                  N messages "m0".."m<N-1>"; "close-me" makes the server
//                  close with 4001 "bye"; a client's close is echoed
'use strict';
const crypto = require('crypto');
const http = require('http');

// A minimal RFC 6455 server side: enough for the tests (frames up to 2^32
// bytes, no extensions, no fragmentation).
function frame(opcode, payload) {
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x80 | opcode, len])
             : len < 65536 ? Buffer.from([0x80 | opcode, 126, len >> 8, len & 255])
             : Buffer.concat([Buffer.from([0x80 | opcode, 127, 0, 0, 0, 0]), Buffer.from([len >>> 24, (len >> 16) & 255, (len >> 8) & 255, len & 255])]);
  return Buffer.concat([head, payload]);
}

function acceptWebSocket(req, socket) {
  const key = req.headers['sec-websocket-key'];
  const accept = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  const protocols = (req.headers['sec-websocket-protocol'] || '').split(',').map((p) => p.trim()).filter(Boolean);
  socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
               `Sec-WebSocket-Accept: ${accept}\r\n` +
               (protocols.length ? `Sec-WebSocket-Protocol: ${protocols[0]}\r\n` : '') + '\r\n');
  let buffer = Buffer.alloc(0);
  let closing = false;  // this side sent a close frame first
  socket.on('data', (chunk) => {
    buffer = Buffer.concat([buffer, chunk]);
    for (;;) {
      if (buffer.length < 2) return;
      const opcode = buffer[0] & 15;
      let len = buffer[1] & 127, offset = 2;
      if (len === 126) { if (buffer.length < 4) return; len = buffer.readUInt16BE(2); offset = 4; }
      else if (len === 127) { if (buffer.length < 10) return; len = buffer.readUInt32BE(6); offset = 10; }
      if (buffer.length < offset + 4 + len) return;
      const mask = buffer.subarray(offset, offset + 4);
      const payload = Buffer.from(buffer.subarray(offset + 4, offset + 4 + len));
      for (let i = 0; i < len; i++) payload[i] ^= mask[i & 3];
      buffer = buffer.subarray(offset + 4 + len);
      if (opcode === 1 && payload.toString() === 'close-me') {
        const body = Buffer.concat([Buffer.from([4001 >> 8, 4001 & 255]), Buffer.from('bye')]);
        closing = true;
        socket.write(frame(8, body));
      } else if (opcode === 1 && payload.toString().startsWith('burst:')) {
        const n = Number(payload.toString().slice(6));
        for (let i = 0; i < n; i++) socket.write(frame(1, Buffer.from('m' + i)));
      } else if (opcode === 1 || opcode === 2) {
        socket.write(frame(opcode, payload));
      } else if (opcode === 8) {
        if (closing) socket.end(); else socket.end(frame(8, payload));
      } else if (opcode === 9) {
        socket.write(frame(10, payload));
      }
    }
  });
  socket.on('error', () => {});
}

function createTestServer(fallback) {
  let aborted = 0;
  const server = http.createServer((req, res) => {
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
  server.on('upgrade', (req, socket) => {
    if (new URL(req.url, 'http://127.0.0.1').pathname === '/ws') acceptWebSocket(req, socket);
    else socket.destroy();
  });
  return server;
}

module.exports = {createTestServer};
