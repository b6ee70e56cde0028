/**
 * Browser mode: the app's UI served to a local browser where no Electron
 * binary exists (and for people who prefer a browser tab).
 *
 * Security model: the server binds to 127.0.0.1 only, and everything it serves
 * (page, assets, WebSocket) requires the random per-run token that `npm start`
 * prints in the URL. The page sets an HttpOnly, SameSite=Strict cookie with the
 * token so assets load without repeating it; the WebSocket bridge requires the
 * token in its URL and an Origin equal to our own, so another site open in the
 * same browser can neither read the page nor drive the engine.
 *
 * The bridge is a relay: each WebSocket gets its own control-socket connection
 * to the engine host, which validates every request. The relay only checks
 * size and JSON, and re-serialises so that one WebSocket message is exactly
 * one control-socket line.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { extname, join, normalize, resolve, sep } from 'node:path';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { MAX_MESSAGE_BYTES } from '../../preload/api.js';
import { LineFramer } from './line-framer.js';

const TOKEN_COOKIE = 'spindle_token';
const BRIDGE_PATH = '/bridge';

/** The policy for the page; the Electron window sets the same one. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
};

export interface BrowserModeOptions {
  /** The engine host's control socket. */
  readonly socketPath: string;
  /** The built renderer (index.html and assets). */
  readonly rendererDir: string;
  readonly port?: number;
  readonly host?: string;
  readonly token?: string;
  readonly log?: (line: string) => void;
}

export interface BrowserModeServer {
  readonly url: string;
  readonly origin: string;
  readonly port: number;
  readonly token: string;
  close(): Promise<void>;
}

export async function startBrowserMode(options: BrowserModeOptions): Promise<BrowserModeServer> {
  const host = options.host ?? '127.0.0.1';
  const token = options.token ?? randomBytes(24).toString('base64url');
  const rendererDir = resolve(options.rendererDir);
  const log = options.log ?? (() => {});
  let origin = '';

  const http = createServer((req, res) => {
    void serveStatic(req, res).catch((error: unknown) => {
      log(`browser mode: ${(error as Error).message}`);
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('internal error');
    });
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });
  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', origin);
    const refusal =
      url.pathname !== BRIDGE_PATH
        ? 'unknown path'
        : !tokenMatches(url.searchParams.get('token'), token)
          ? 'missing or wrong token'
          : req.headers.origin !== origin
            ? `origin ${req.headers.origin ?? '(none)'} is not ${origin}`
            : undefined;
    if (refusal) {
      log(`browser mode: refused a WebSocket (${refusal})`);
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => relay(ws));
  });

  function relay(ws: WebSocket): void {
    const control = connect(options.socketPath);
    const framer = new LineFramer(MAX_MESSAGE_BYTES);
    control.on('data', (chunk: Buffer) => {
      try {
        for (const line of framer.push(chunk)) ws.send(line);
      } catch {
        ws.close(1011, 'engine host sent an oversized message');
      }
    });
    control.on('error', () => ws.close(1011, 'engine host unavailable'));
    control.on('close', () => ws.close(1012, 'engine host closed the connection'));
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        ws.close(1003, 'text messages only');
        return;
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(data.toString());
      } catch {
        ws.send(JSON.stringify({ type: 'reply', id: null, ok: false, error: { code: 'BAD_MESSAGE', message: 'message is not valid JSON' } }));
        return;
      }
      control.write(JSON.stringify(parsed) + '\n');
    });
    ws.on('close', () => control.end());
    ws.on('error', () => control.destroy());
  }

  async function serveStatic(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', origin);
    const queryToken = url.searchParams.get('token');
    const authorised = tokenMatches(queryToken, token) || tokenMatches(cookieToken(req), token);
    const headers: Record<string, string> = {
      'content-security-policy': CONTENT_SECURITY_POLICY,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'x-frame-options': 'DENY',
      'cache-control': 'no-store',
    };
    if (!authorised) {
      res.writeHead(403, { ...headers, 'content-type': 'text/plain; charset=utf-8' });
      res.end('Forbidden: open Spindle with the link that `npm start` printed (it carries a per-run token).\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...headers, allow: 'GET, HEAD' });
      res.end();
      return;
    }
    if (tokenMatches(queryToken, token)) {
      headers['set-cookie'] = `${TOKEN_COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/`;
    }
    const relative = url.pathname === '/' ? 'index.html' : decodeURIComponent(url.pathname).replace(/^\/+/, '');
    const file = normalize(join(rendererDir, relative));
    if (!file.startsWith(rendererDir + sep)) {
      res.writeHead(404, headers);
      res.end();
      return;
    }
    const info = await stat(file).catch(() => undefined);
    if (!info?.isFile()) {
      res.writeHead(404, { ...headers, 'content-type': 'text/plain; charset=utf-8' });
      res.end('not found\n');
      return;
    }
    const body = await readFile(file);
    res.writeHead(200, { ...headers, 'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream', 'content-length': body.length });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  await new Promise<void>((resolveListen, reject) => {
    http.once('error', reject);
    http.listen(options.port ?? 0, host, () => {
      http.off('error', reject);
      resolveListen();
    });
  });
  const address = http.address();
  if (address === null || typeof address === 'string') throw new Error('browser mode: unexpected listen address');
  origin = `http://${host}:${address.port}`;
  return {
    url: `${origin}/?token=${token}`,
    origin,
    port: address.port,
    token,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      http.closeAllConnections();
      await new Promise<void>((done) => http.close(() => done()));
    },
  };
}

function tokenMatches(candidate: string | null | undefined, token: string): boolean {
  if (!candidate) return false;
  const a = Buffer.from(candidate);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function cookieToken(req: IncomingMessage): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const [name, ...value] = part.trim().split('=');
    if (name === TOKEN_COOKIE) return value.join('=');
  }
  return undefined;
}
