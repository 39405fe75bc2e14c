// A real Python WSGI upstream (the standard library's wsgiref): it decodes the path into
// PATH_INFO and merges header names the CGI way (`X_Auth_Email` and `X-Auth-Email` are both
// HTTP_X_AUTH_EMAIL), which is exactly what a proxy must not let a client play with.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { withTimeout } from './util.js';

/** What the WSGI app saw of one request. */
export interface WsgiEcho {
  method: string;
  raw_path: string;
  path_info: string;
  query: string;
  environ: Record<string, string>;
}

const APP = String.raw`
import json, sys
from wsgiref.simple_server import make_server, WSGIRequestHandler, WSGIServer

class Handler(WSGIRequestHandler):
    def get_environ(self):
        env = super().get_environ()
        env['RAW_PATH'] = self.path
        return env
    def log_message(self, *args):
        pass

def app(environ, start_response):
    seen = {
        'method': environ['REQUEST_METHOD'],
        'raw_path': environ.get('RAW_PATH', ''),
        'path_info': environ.get('PATH_INFO', ''),
        'query': environ.get('QUERY_STRING', ''),
        'environ': {k: v for k, v in environ.items() if k.startswith('HTTP_')},
    }
    body = json.dumps(seen).encode()
    start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
    return [body]

server = make_server('127.0.0.1', 0, app, WSGIServer, Handler)
print(server.server_port, flush=True)
server.serve_forever()
`;

export interface WsgiUpstream {
  readonly url: string;
  close(): Promise<void>;
}

export async function startWsgiUpstream(): Promise<WsgiUpstream> {
  const child: ChildProcess = spawn('python3', ['-c', APP], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await withTimeout(new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`python3 wsgiref exited with ${code}`)));
    child.stdout!.setEncoding('utf8').once('data', (text: string) => resolve(Number(text.trim())));
  }), 10_000, 'wsgiref upstream');
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    }),
  };
}
