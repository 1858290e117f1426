// Preloaded with `node --require` in tests: any attempt to reach the network throws and is recorded
// in the file named by TDR_NETLOG (one line per attempt), so a test can assert that none happened.
'use strict';
const fs = require('fs');
const net = require('net');
const dns = require('dns');
const log = (what) => {
  if (process.env.TDR_NETLOG) fs.appendFileSync(process.env.TDR_NETLOG, `${what}\n`);
  throw new Error(`network access blocked in this test: ${what}`);
};
const isLocal = (h) => h === undefined || h === null || h === 'localhost' || /^127\./.test(String(h)) || h === '::1' || String(h).startsWith('/');
const origConnect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  const o = args[0];
  const host = typeof o === 'object' && o !== null ? o.host ?? o.path : typeof args[1] === 'string' ? args[1] : undefined;
  if (typeof o === 'object' && o !== null && o.path) return origConnect.apply(this, args); // unix sockets (IPC)
  if (!isLocal(host)) log(`net.connect ${host}`);
  return origConnect.apply(this, args);
};
for (const k of ['lookup', 'resolve', 'resolve4', 'resolve6']) {
  const orig = dns[k];
  dns[k] = function (host, ...rest) {
    if (!isLocal(host)) log(`dns.${k} ${host}`);
    return orig.call(this, host, ...rest);
  };
}
if (typeof globalThis.fetch === 'function') {
  globalThis.fetch = async (url) => log(`fetch ${url}`);
}
