// JavaScript helpers for tests/web/web_test.cpp (loaded before the test
// program, in Node by node_runner.cjs and in the page by browser/test.html).
globalThis.duetTest = {
  delay(ms, value) { return new Promise((resolve) => setTimeout(() => resolve(value), ms)); },
  rejectLater(ms, message) {
    return new Promise((_, reject) => setTimeout(() => reject(new TypeError(message)), ms));
  },
  never() { return new Promise(() => {}); },
  throwNow(message) { throw new Error(message); },
  isPromise(p) { return p instanceof Promise; },
  // A host macrotask that sets box.ran (setImmediate in Node, a message on
  // a MessageChannel of its own in a page).
  postMacrotask() {
    const box = {ran: false};
    if (typeof setImmediate === 'function') {
      setImmediate(() => { box.ran = true; });
    } else {
      const channel = new MessageChannel();
      channel.port1.onmessage = () => { box.ran = true; channel.port1.close(); };
      channel.port2.postMessage(0);
    }
    return box;
  },
  // Called from inside a duet callback: calls back into the running loop.
  reenter() { (globalThis.duetModule || globalThis.Module)._duet_test_reenter(); },
};
globalThis.duetTestStopAll = () => (globalThis.duetModule || globalThis.Module)._duet_test_stop_all();
globalThis.nullValue = null;
globalThis.duetTest.throwingObject = () => ({get boom() { throw new Error('getter threw'); }});
globalThis.duetTest.watch = (p) => {
  globalThis.duetTestWatched = false;
  p.then(() => { globalThis.duetTestWatched = true; }, () => { globalThis.duetTestWatched = true; });
};
