// duet_web.js — the JavaScript half of duet::web, an Emscripten JS library
// (linked with --js-library by the duet::web target).
//
// JavaScript values cross into C++ as small integers: DuetWeb.put(v) keeps
// v in a table and returns its id, which a C++ JsValue owns (and releases).
// Calls from JavaScript into the wasm module go through DuetWeb.call, which
// is Emscripten's callUserCallback: it handles the runtime's exit and an
// abort like any other event handler.
//
// The driver's two host primitives live here, behind one function each:
//   zero-delay macrotask   setImmediate under Node, a MessageChannel in
//                          browsers and Workers (setTimeout(0) is clamped to
//                          >= 4 ms once nested), setTimeout(0) as the last
//                          resort or when asked for (the latency benchmark)
//   one host timer         setTimeout / clearTimeout, one per driver

mergeInto(LibraryManager.library, {
  $DuetWeb__deps: ['$callUserCallback'],
  // For page scripts: Module.duetTake(id) turns an id that a C++ export
  // returned (JsValue::release(), e.g. a start_promise() Promise) into the
  // value, and releases the id.
  $DuetWeb__postset: 'Module["duetTake"] = function(id) { return DuetWeb.take(id); };',
  $DuetWeb: {
    // Id 0 is undefined and never handed out. (Not "[undefined]": the
    // library serializer writes that as an empty array.)
    values: [],
    freeIds: [],
    live: 0,
    put: function(v) {
      var id = DuetWeb.freeIds.length ? DuetWeb.freeIds.pop() : Math.max(DuetWeb.values.length, 1);
      DuetWeb.values[id] = v;
      DuetWeb.live++;
      return id;
    },
    get: function(id) { return DuetWeb.values[id]; },
    release: function(id) {
      if (id <= 0) return;
      DuetWeb.values[id] = undefined;
      DuetWeb.freeIds.push(id);
      DuetWeb.live--;
    },
    take: function(id) {
      var v = DuetWeb.values[id];
      DuetWeb.release(id);
      return v;
    },
    call: function(f) {
      if (ABORT) return;
      callUserCallback(f);
    },
    // Exactly `len` bytes of UTF-8 (embedded NULs included, which
    // UTF8ToString would stop at).
    decoder: null,
    str: function(ptr, len) {
      if (!len) return '';
      if (!DuetWeb.decoder) DuetWeb.decoder = new TextDecoder('utf-8');
      return DuetWeb.decoder.decode(HEAPU8.subarray(ptr, ptr + len));
    },
    // Runs f; a JavaScript throw is kept for C++ (duet_web_js_failed, then
    // duet_web_js_take_last_error) instead of unwinding through wasm.
    failed: false,
    guard: function(f, fallback) {
      try {
        return f();
      } catch (e) {
        DuetWeb.failed = true;
        DuetWeb.lastError = e;
        return fallback;
      }
    },
    // One function per way of running something on a later macrotask.
    zeroDelay: {},
    pickZeroDelay: function(kind) {
      if (kind === 0) kind = (typeof setImmediate === 'function') ? 2 : (typeof MessageChannel === 'function') ? 1 : 3;
      if (DuetWeb.zeroDelay[kind]) return DuetWeb.zeroDelay[kind];
      var f;
      if (kind === 1) {
        var channel = new MessageChannel();
        var queue = [];
        channel.port1.onmessage = function() { var g = queue.shift(); if (g) g(); };
        f = function(g) { queue.push(g); channel.port2.postMessage(0); };
        f.label = 'MessageChannel';
      } else if (kind === 2) {
        f = function(g) { setImmediate(g); };
        f.label = 'setImmediate';
      } else {
        f = function(g) { setTimeout(g, 0); };
        f.label = 'setTimeout(0)';
      }
      DuetWeb.zeroDelay[kind] = f;
      return f;
    },
    errorMessage: function(e) {
      try {
        if (e && typeof e === 'object' && 'message' in e) return String(e.message);
        return String(e);
      } catch (x) {
        return 'unprintable JavaScript value';
      }
    },
    errorName: function(e) {
      try {
        if (e && typeof e === 'object' && 'name' in e) return String(e.name);
      } catch (x) {
        return 'Error';
      }
      return typeof e;
    },
  },

  // ---- values ---------------------------------------------------------------

  duet_web_js_release__deps: ['$DuetWeb'],
  duet_web_js_release: function(id) { DuetWeb.release(id); },

  duet_web_js_dup__deps: ['$DuetWeb'],
  duet_web_js_dup: function(id) { return id ? DuetWeb.put(DuetWeb.get(id)) : 0; },

  duet_web_js_live_values__deps: ['$DuetWeb'],
  duet_web_js_live_values: function() { return DuetWeb.live; },

  duet_web_js_from_string__deps: ['$DuetWeb'],
  duet_web_js_from_string: function(ptr, len) { return DuetWeb.put(DuetWeb.str(ptr, len)); },

  duet_web_js_from_number__deps: ['$DuetWeb'],
  duet_web_js_from_number: function(x) { return DuetWeb.put(x); },

  duet_web_js_from_bool__deps: ['$DuetWeb'],
  duet_web_js_from_bool: function(b) { return DuetWeb.put(!!b); },

  duet_web_js_from_bytes__deps: ['$DuetWeb'],
  duet_web_js_from_bytes: function(ptr, len) { return DuetWeb.put(HEAPU8.slice(ptr, ptr + len)); },

  duet_web_js_undefined__deps: ['$DuetWeb'],
  duet_web_js_undefined: function() { return DuetWeb.put(undefined); },

  duet_web_js_global__deps: ['$DuetWeb'],
  duet_web_js_global: function(ptr, len) { return DuetWeb.put(globalThis[DuetWeb.str(ptr, len)]); },

  duet_web_js_get__deps: ['$DuetWeb'],
  duet_web_js_get: function(id, ptr, len) {
    return DuetWeb.guard(function() {
      var v = DuetWeb.get(id);
      return DuetWeb.put(v === undefined || v === null ? undefined : v[DuetWeb.str(ptr, len)]);
    }, 0);
  },

  duet_web_js_set__deps: ['$DuetWeb'],
  duet_web_js_set: function(id, ptr, len, value) {
    DuetWeb.guard(function() { DuetWeb.get(id)[DuetWeb.str(ptr, len)] = DuetWeb.get(value); });
  },

  // Calls obj[name](args...) (args: an array value, or 0) and returns the
  // result; a throw becomes a rejected-promise-like {error} record: the C++
  // side checks duet_web_js_is_error.
  duet_web_js_call__deps: ['$DuetWeb'],
  duet_web_js_call: function(id, ptr, len, argsId) {
    var obj = DuetWeb.get(id);
    var args = argsId ? DuetWeb.get(argsId) : [];
    try {
      var f = len ? obj[DuetWeb.str(ptr, len)] : obj;
      return DuetWeb.put(f.apply(len ? obj : undefined, args));
    } catch (e) {
      DuetWeb.lastError = e;
      return -1;
    }
  },

  duet_web_js_take_last_error__deps: ['$DuetWeb'],
  duet_web_js_take_last_error: function() {
    var e = DuetWeb.lastError;
    DuetWeb.lastError = undefined;
    return DuetWeb.put(e);
  },

  duet_web_js_new_array__deps: ['$DuetWeb'],
  duet_web_js_new_array: function() { return DuetWeb.put([]); },

  duet_web_js_push__deps: ['$DuetWeb'],
  duet_web_js_push: function(arr, v) { DuetWeb.guard(function() { DuetWeb.get(arr).push(DuetWeb.get(v)); }); },

  duet_web_js_type_of__deps: ['$DuetWeb'],
  duet_web_js_type_of: function(id) {
    // 0 undefined, 1 null, 2 boolean, 3 number, 4 string, 5 object, 6 function, 7 other
    var v = DuetWeb.get(id);
    if (v === undefined) return 0;
    if (v === null) return 1;
    switch (typeof v) {
      case 'boolean': return 2;
      case 'number': return 3;
      case 'string': return 4;
      case 'object': return 5;
      case 'function': return 6;
      default: return 7;
    }
  },

  duet_web_js_to_number__deps: ['$DuetWeb'],
  duet_web_js_to_number: function(id) { return DuetWeb.guard(function() { return Number(DuetWeb.get(id)); }, NaN); },

  duet_web_js_failed__deps: ['$DuetWeb'],
  duet_web_js_failed: function() {
    var f = DuetWeb.failed;
    DuetWeb.failed = false;
    return f ? 1 : 0;
  },

  duet_web_js_truthy__deps: ['$DuetWeb'],
  duet_web_js_truthy: function(id) { return DuetWeb.get(id) ? 1 : 0; },

  // String(value) as UTF-8: the length first, then the copy.
  duet_web_js_string_length__deps: ['$DuetWeb'],
  duet_web_js_string_length: function(id) {
    return DuetWeb.guard(function() {
      var s = String(DuetWeb.get(id));
      DuetWeb.pendingString = s;
      return lengthBytesUTF8(s);
    }, -1);
  },
  duet_web_js_string_copy__deps: ['$DuetWeb'],
  duet_web_js_string_copy: function(ptr, n) {
    stringToUTF8(DuetWeb.pendingString, ptr, n + 1);
    DuetWeb.pendingString = undefined;
  },

  // Bytes of a Uint8Array / ArrayBuffer / typed array.
  duet_web_js_bytes_length__deps: ['$DuetWeb'],
  duet_web_js_bytes_length: function(id) {
    var v = DuetWeb.get(id);
    if (v instanceof ArrayBuffer) v = new Uint8Array(v);
    else if (ArrayBuffer.isView(v)) v = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    else return -1;
    DuetWeb.pendingBytes = v;
    return v.length;
  },
  duet_web_js_bytes_copy__deps: ['$DuetWeb'],
  duet_web_js_bytes_copy: function(ptr) {
    HEAPU8.set(DuetWeb.pendingBytes, ptr);
    DuetWeb.pendingBytes = undefined;
  },

  duet_web_js_error_message__deps: ['$DuetWeb'],
  duet_web_js_error_message: function(id) { return DuetWeb.put(DuetWeb.errorMessage(DuetWeb.get(id))); },

  duet_web_js_error_name__deps: ['$DuetWeb'],
  duet_web_js_error_name: function(id) { return DuetWeb.put(DuetWeb.errorName(DuetWeb.get(id))); },

  duet_web_js_new_error__deps: ['$DuetWeb'],
  duet_web_js_new_error: function(namePtr, nameLen, msgPtr, msgLen) {
    var e = new Error(DuetWeb.str(msgPtr, msgLen));
    if (nameLen) e.name = DuetWeb.str(namePtr, nameLen);
    return DuetWeb.put(e);
  },

  // ---- promises -------------------------------------------------------------

  // Settles into C++: _duet_web_promise_settled(token, ok, value id). A
  // non-thenable counts as an already resolved promise.
  duet_web_js_then__deps: ['$DuetWeb'],
  duet_web_js_then: function(id, token) {
    Promise.resolve(DuetWeb.get(id)).then(
      function(v) { DuetWeb.call(function() { _duet_web_promise_settled(token, 1, DuetWeb.put(v)); }); },
      function(e) { DuetWeb.call(function() { _duet_web_promise_settled(token, 0, DuetWeb.put(e)); }); });
  },

  // A new Promise: returns the id of {promise, resolve, reject}.
  duet_web_js_deferred__deps: ['$DuetWeb'],
  duet_web_js_deferred: function() {
    var d = {};
    d.promise = new Promise(function(resolve, reject) { d.resolve = resolve; d.reject = reject; });
    return DuetWeb.put(d);
  },
  duet_web_js_settle__deps: ['$DuetWeb'],
  duet_web_js_settle: function(deferred, ok, value) {
    var d = DuetWeb.take(deferred);
    if (ok) d.resolve(DuetWeb.get(value)); else d.reject(DuetWeb.get(value));
  },

  // ---- the driver's host primitives -----------------------------------------

  duet_web_js_schedule_tick__deps: ['$DuetWeb'],
  duet_web_js_schedule_tick: function(driver, kind) {
    DuetWeb.pickZeroDelay(kind)(function() { DuetWeb.call(function() { _duet_web_tick(driver); }); });
  },

  duet_web_js_zero_delay_label__deps: ['$DuetWeb'],
  duet_web_js_zero_delay_label: function(kind) { return DuetWeb.put(DuetWeb.pickZeroDelay(kind).label); },

  duet_web_js_set_timer__deps: ['$DuetWeb'],
  duet_web_js_set_timer: function(driver, ms) {
    // setTimeout's delay is a signed 32-bit count of milliseconds; a later
    // deadline is reached in steps (the driver re-arms when one fires).
    if (ms > 2147483647) ms = 2147483647;
    return setTimeout(function() { DuetWeb.call(function() { _duet_web_timer_fired(driver); }); }, ms);
  },

  duet_web_js_clear_timer: function(id) { clearTimeout(id); },

  duet_web_js_keepalive__deps: ['$runtimeKeepalivePush', '$runtimeKeepalivePop'],
  duet_web_js_keepalive: function(push) {
    if (push) runtimeKeepalivePush(); else runtimeKeepalivePop();
  },

  // ---- fetch ----------------------------------------------------------------

  // Starts fetch(url, init); returns the id of {promise, controller}: the
  // promise resolves with {status, statusText, url, headers: [[name,
  // value]...], body: Uint8Array}; controller is its AbortController (null
  // where there is none). `headers` is "name: value\n" lines.
  duet_web_js_fetch__deps: ['$DuetWeb'],
  duet_web_js_fetch: function(urlPtr, urlLen, methodPtr, methodLen, headersPtr, headersLen, bodyPtr, bodyLen,
                              hasBody) {
    var controller = (typeof AbortController === 'function') ? new AbortController() : null;
    var init = {method: DuetWeb.str(methodPtr, methodLen)};
    var headers = [];
    DuetWeb.str(headersPtr, headersLen).split('\n').forEach(function(line) {
      var colon = line.indexOf(':');
      if (colon > 0) headers.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
    });
    init.headers = headers;
    if (hasBody) init.body = HEAPU8.slice(bodyPtr, bodyPtr + bodyLen);
    if (controller) init.signal = controller.signal;
    var p;
    try {
      if (typeof fetch !== 'function') throw new Error('fetch is not available in this JavaScript environment');
      p = fetch(DuetWeb.str(urlPtr, urlLen), init).then(function(r) {
        return r.arrayBuffer().then(function(buf) {
          var hs = [];
          r.headers.forEach(function(value, name) { hs.push([name, value]); });
          return {status: r.status, statusText: r.statusText, url: r.url, headers: hs, body: new Uint8Array(buf)};
        });
      });
    } catch (e) {
      p = Promise.reject(e);
    }
    return DuetWeb.put({promise: p, controller: controller});
  },

  // ---- WebSocket --------------------------------------------------------------

  // Opens a WebSocket and reports its events into C++ through
  // _duet_web_ws_event(token, kind, value id): 0 open, 1 text message,
  // 2 binary message (Uint8Array), 3 close ({code, reason, wasClean}),
  // 4 error. Returns the socket's id, or -1 (with the error kept for
  // duet_web_js_take_last_error) when it cannot be created.
  duet_web_js_ws_open__deps: ['$DuetWeb'],
  duet_web_js_ws_open: function(urlPtr, urlLen, protocolsPtr, protocolsLen, token) {
    try {
      if (typeof WebSocket !== 'function') throw new Error('WebSocket is not available in this JavaScript environment');
      var protocols = DuetWeb.str(protocolsPtr, protocolsLen).split('\n').filter(function(p) { return p; });
      var ws = new WebSocket(DuetWeb.str(urlPtr, urlLen), protocols);
      ws.binaryType = 'arraybuffer';
      var report = function(kind, value) {
        DuetWeb.call(function() { _duet_web_ws_event(token, kind, kind === 0 || kind === 4 ? 0 : DuetWeb.put(value)); });
      };
      ws.onopen = function() { report(0); };
      ws.onmessage = function(e) {
        if (typeof e.data === 'string') report(1, e.data); else report(2, new Uint8Array(e.data));
      };
      ws.onclose = function(e) { report(3, {code: e.code, reason: e.reason, wasClean: e.wasClean}); };
      ws.onerror = function() { report(4); };
      return DuetWeb.put(ws);
    } catch (e) {
      DuetWeb.lastError = e;
      return -1;
    }
  },
});
