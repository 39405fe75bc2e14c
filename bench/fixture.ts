// Bench helper processes (upstreams, relays, idle clients): `node fixture.js <kind> …`, prints "ready <port>", exits when stdin closes.
import net from 'node:net';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';

const [kind, ...args] = process.argv.slice(2);
const CHUNK = Buffer.alloc(256 * 1024, 0x61);

let onCommand: (line: string) => void = () => undefined;
process.stdin.setEncoding('utf8');
process.stdin.on('data', (text: string) => text.split('\n').filter(Boolean).forEach((line) => onCommand(line.trim())));
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));

function listen(server: net.Server): void {
  server.listen(0, '127.0.0.1', 511, () => {
    console.log(`ready ${(server.address() as net.AddressInfo).port}`);
  });
}

/** Writes `total` bytes with backpressure, then ends. */
function sendBytes(out: NodeJS.WritableStream & { destroyed?: boolean }, total: number): void {
  let left = total;
  const pump = (): void => {
    while (left > 0 && !out.destroyed) {
      const n = Math.min(left, CHUNK.length);
      left -= n;
      if (!out.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) {
        out.once('drain', pump);
        return;
      }
    }
    if (left === 0) out.end();
  };
  pump();
}

function relayPair(a: net.Socket, b: net.Socket): void {
  a.setNoDelay(true);
  b.setNoDelay(true);
  a.pipe(b);
  b.pipe(a);
  a.on('error', () => b.destroy());
  b.on('error', () => a.destroy());
  a.on('close', () => b.destroy());
  b.on('close', () => a.destroy());
}

switch (kind) {
  case 'tcp-source': {
    // Writes `bytes` on every connection, then closes.
    const bytes = Number(args[0]);
    listen(net.createServer((socket) => {
      socket.on('error', () => socket.destroy());
      socket.resume();
      sendBytes(socket, bytes);
    }));
    break;
  }
  case 'tcp-relay': {
    // A plain Node TCP relay: every connection is piped to 127.0.0.1:<port>.
    const target = Number(args[0]);
    listen(net.createServer((client) => relayPair(client, net.connect(target, '127.0.0.1'))));
    break;
  }
  case 'tls-relay': {
    // A plain Node TLS-terminating relay (key/cert files): every connection is piped to 127.0.0.1:<port>.
    // With a CA file it requires a client certificate from that CA (mutual TLS, as Postern's tls sockets do).
    const [keyFile, certFile, target, clientCaFile] = [String(args[0]), String(args[1]), Number(args[2]), args[3]];
    const mutual = clientCaFile ? { requestCert: true, rejectUnauthorized: true, ca: readFileSync(clientCaFile) } : {};
    listen(tls.createServer({ key: readFileSync(keyFile), cert: readFileSync(certFile), ...mutual }, (client) => relayPair(client, net.connect(target, '127.0.0.1'))));
    break;
  }
  case 'tls-client-relay': {
    // The dialing half of a mutual-TLS relay pair: every plain connection is carried over TLS with a client certificate to 127.0.0.1:<port>.
    const [target, servername, caFile, certFile, keyFile] = [Number(args[0]), String(args[1]), String(args[2]), String(args[3]), String(args[4])];
    const secureContext = tls.createSecureContext({ ca: readFileSync(caFile), cert: readFileSync(certFile), key: readFileSync(keyFile) });
    listen(net.createServer((client) => {
      client.pause();
      const upstream = tls.connect({ host: '127.0.0.1', port: target, servername, secureContext }, () => {
        relayPair(client, upstream);
        client.resume();
      });
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    }));
    break;
  }
  case 'echo': {
    listen(net.createServer((socket) => {
      socket.setNoDelay(true);
      socket.on('error', () => socket.destroy());
      socket.pipe(socket);
    }));
    break;
  }
  case 'http-upstream': {
    // GET /bytes → `bytes` bytes; anything else → "ok".
    const bytes = Number(args[0]);
    const server = http.createServer((req, res) => {
      req.resume();
      if (req.url === '/bytes') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(bytes) });
        sendBytes(res, bytes);
      } else {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
        res.end('ok');
      }
    });
    server.keepAliveTimeout = 65_000;
    listen(server);
    break;
  }
  case 'http-proxy': {
    // A plain Node reverse proxy with a keep-alive agent to 127.0.0.1:<port>; with key and cert files it terminates TLS itself (as Postern's edge does).
    const [target, keyFile, certFile] = [Number(args[0]), args[1], args[2]];
    const agent = new http.Agent({ keepAlive: true, maxFreeSockets: 64 });
    const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      const headers = { ...req.headers };
      delete headers.connection;
      delete headers['keep-alive'];
      const upstream = http.request({ host: '127.0.0.1', port: target, method: req.method, path: req.url, headers, agent }, (response) => {
        const back = { ...response.headers };
        delete back.connection;
        delete back['keep-alive'];
        res.writeHead(response.statusCode ?? 502, back);
        response.pipe(res);
      });
      upstream.on('error', () => {
        if (!res.headersSent) res.writeHead(502);
        res.end();
      });
      req.pipe(upstream);
    };
    const server = keyFile && certFile ? https.createServer({ key: readFileSync(keyFile), cert: readFileSync(certFile) }, onRequest) : http.createServer(onRequest);
    server.keepAliveTimeout = 65_000;
    listen(server);
    break;
  }
  case 'idle-clients': {
    // Opens `count` TLS connections (SNI `servername`; "-" = plain TCP; optional client key and certificate files), each echoes 1 byte, then all stay open idle.
    // Commands: `count` (how many are still open), `ping` (1 more byte on each open one; how many echoed within 10 s).
    const [port, count, servername, caFile, keyFile, certFile] = [Number(args[0]), Number(args[1]), String(args[2]), String(args[3]), args[4], args[5]];
    const identity = keyFile && certFile ? { key: readFileSync(keyFile, 'utf8'), cert: readFileSync(certFile, 'utf8') } : {};
    const secureContext = servername === '-' ? undefined : tls.createSecureContext({ ca: readFileSync(caFile, 'utf8'), ...identity });
    const open: net.Socket[] = [];
    let started = 0;
    let done = 0;
    let errors = 0;
    let lastError = '';
    let closedLater = 0;
    const ping = (): void => {
      const live = open.filter((socket) => !socket.destroyed);
      let echoed = 0;
      let answered = false;
      const answer = (): void => {
        if (answered) return;
        answered = true;
        clearTimeout(timer);
        console.log(`pong ${echoed} of ${live.length}`);
      };
      const timer = setTimeout(answer, 10_000);
      for (const socket of live) {
        socket.once('data', () => {
          if (++echoed === live.length) answer();
        });
        socket.write('y');
      }
      if (live.length === 0) answer();
    };
    onCommand = (line) => {
      if (line === 'count') console.log(`open ${open.length - closedLater} (closed since ready: ${closedLater})`);
      else if (line === 'ping') ping();
    };
    const deadline = Date.now() + 60_000;
    const one = (): void => {
      if (started >= count || Date.now() > deadline) return;
      started++;
      const socket = servername === '-' ? net.connect(port, '127.0.0.1') : tls.connect({ host: '127.0.0.1', port, servername, secureContext });
      const timer = setTimeout(() => socket.destroy(new Error('echo timeout (10 s)')), 10_000);
      let ok = false;
      const finish = (err?: Error): void => {
        if (ok) return;
        ok = true;
        clearTimeout(timer);
        done++;
        if (err) {
          errors++;
          lastError = err.message;
        } else {
          open.push(socket);
          socket.once('close', () => closedLater++);
        }
        if (done === count || (started === done && Date.now() > deadline)) {
          console.log(`ready ${open.length} open, ${errors} errors${lastError ? ` (last: ${lastError})` : ''}`);
        } else one();
      };
      socket.once(servername === '-' ? 'connect' : 'secureConnect', () => socket.write('x'));
      socket.once('data', () => finish());
      socket.on('error', (err) => finish(err));
      socket.on('close', () => finish(new Error('closed before echo')));
    };
    for (let i = 0; i < 32; i++) one();
    break;
  }
  default:
    console.error(`unknown fixture ${kind}`);
    process.exit(2);
}
