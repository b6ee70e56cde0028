/**
 * The contract between the engine host and its clients (Electron main and
 * preload, the browser-mode bridge, the renderer, the CLI).
 *
 * One file, used by all of them: request names with the schema that validates
 * their parameters at every boundary, the reply type of each, the events the
 * host pushes, and the wire envelope that carries them over the control socket
 * and the browser-mode WebSocket. The renderer imports only its types.
 *
 * Versioning: CONTRACT_VERSION changes when a request or event changes shape
 * incompatibly; a client speaking another version gets VERSION_MISMATCH and
 * nothing else.
 */
import * as v from 'valibot';

export const CONTRACT_VERSION = 1;

/** Largest message (one JSON line) either side accepts, in bytes. */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

// ---------------------------------------------------------------------------
// Requests: name → parameter schema. Parameters are always an object so that
// later versions can add optional fields.

export const requestSchemas = {
  /** The engine host's version and uptime. */
  version: v.strictObject({}),
  /** Stop the engine host cleanly (CLI `spindle stop`, tests). */
  shutdown: v.strictObject({}),
} as const;

export type RequestName = keyof typeof requestSchemas;
export type RequestParams<N extends RequestName> = v.InferOutput<(typeof requestSchemas)[N]>;

export interface VersionInfo {
  /** Spindle's package version. */
  readonly version: string;
  readonly contractVersion: number;
  readonly pid: number;
  /** Milliseconds since the engine host started. */
  readonly uptimeMs: number;
  /** ISO 8601 time the engine host started. */
  readonly startedAt: string;
  readonly nodeVersion: string;
}

export interface Replies {
  version: VersionInfo;
  shutdown: { readonly stopping: true };
}

// ---------------------------------------------------------------------------
// Events the host pushes to every connected client.

export interface EngineStatus {
  readonly uptimeMs: number;
  readonly startedAt: string;
  readonly version: string;
}

export interface Events {
  /** Once a second, and right after a client connects. */
  'engine-status': EngineStatus;
}

export type EventName = keyof Events;
export const EVENT_NAMES: readonly EventName[] = ['engine-status'];

// ---------------------------------------------------------------------------
// What the renderer sees as `window.spindle` (Electron preload or browser-mode
// bridge alike).

export interface SpindleApi {
  request<N extends RequestName>(method: N, params: RequestParams<N>): Promise<Replies[N]>;
  /** Subscribes to an event; returns the function that unsubscribes. */
  on<E extends EventName>(event: E, listener: (data: Events[E]) => void): () => void;
}

// ---------------------------------------------------------------------------
// Wire envelope (newline-delimited JSON on the control socket, one JSON text
// per WebSocket message in browser mode).

export type ErrorCode =
  | 'BAD_MESSAGE' // not JSON, or not an envelope
  | 'VERSION_MISMATCH'
  | 'UNKNOWN_METHOD'
  | 'INVALID_PARAMS'
  | 'TOO_LARGE'
  | 'FAILED' // the request was valid but could not be done; message says why
  | 'INTERNAL'
  | 'DISCONNECTED';

export interface WireError {
  readonly code: ErrorCode;
  readonly message: string;
}

export const requestEnvelopeSchema = v.strictObject({
  type: v.literal('request'),
  version: v.pipe(v.number(), v.integer()),
  id: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Number.MAX_SAFE_INTEGER)),
  method: v.pipe(v.string(), v.maxLength(100)),
  params: v.optional(v.unknown()),
});

export type RequestEnvelope = v.InferOutput<typeof requestEnvelopeSchema>;

export type ReplyEnvelope =
  | { readonly type: 'reply'; readonly id: number; readonly ok: true; readonly result: unknown }
  | { readonly type: 'reply'; readonly id: number | null; readonly ok: false; readonly error: WireError };

export interface EventEnvelope<E extends EventName = EventName> {
  readonly type: 'event';
  readonly event: E;
  readonly data: Events[E];
}

export type ServerMessage = ReplyEnvelope | EventEnvelope;

export function isRequestName(name: string): name is RequestName {
  return Object.prototype.hasOwnProperty.call(requestSchemas, name);
}

/** The error a client raises for an error reply. */
export class ContractError extends Error {
  readonly code: ErrorCode;
  constructor(error: WireError) {
    super(error.message);
    this.name = 'ContractError';
    this.code = error.code;
  }
}

/**
 * Validates a request envelope and its parameters. Returns the typed request
 * or the error reply to send; never throws.
 */
export function parseRequest(
  raw: unknown,
): { ok: true; id: number; method: RequestName; params: unknown } | { ok: false; id: number | null; error: WireError } {
  const id = typeof raw === 'object' && raw !== null && Number.isSafeInteger((raw as { id?: unknown }).id)
    ? ((raw as { id: number }).id)
    : null;
  const envelope = v.safeParse(requestEnvelopeSchema, raw);
  if (!envelope.success) {
    return { ok: false, id, error: { code: 'BAD_MESSAGE', message: `malformed request: ${describeIssues(envelope.issues)}` } };
  }
  const { version, method, params } = envelope.output;
  if (version !== CONTRACT_VERSION) {
    return {
      ok: false,
      id,
      error: { code: 'VERSION_MISMATCH', message: `contract version ${version} is not supported; this engine host speaks version ${CONTRACT_VERSION}` },
    };
  }
  if (!isRequestName(method)) {
    return { ok: false, id, error: { code: 'UNKNOWN_METHOD', message: `unknown request "${method}"` } };
  }
  const parsed = v.safeParse(requestSchemas[method], params ?? {});
  if (!parsed.success) {
    return { ok: false, id, error: { code: 'INVALID_PARAMS', message: `invalid parameters for "${method}": ${describeIssues(parsed.issues)}` } };
  }
  return { ok: true, id: envelope.output.id, method, params: parsed.output };
}

function describeIssues(issues: readonly v.BaseIssue<unknown>[]): string {
  return issues
    .slice(0, 3)
    .map((issue) => {
      const path = v.getDotPath(issue);
      return path ? `${path}: ${issue.message}` : issue.message;
    })
    .join('; ');
}
