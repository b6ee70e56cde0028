/**
 * The disk helper's command protocol: one JSON object per line on stdin,
 * one per line on stdout.
 *
 * The helper may run as root while its stdin belongs to an unprivileged
 * process, so the request set is small and closed: five operations, each a
 * strict object (unknown fields are refused, not ignored), a disk named only
 * by an identity string that must match the inventory exactly, no paths to
 * open, no shell strings, lines capped at MAX_LINE_BYTES.
 *
 * Requests:  {"id":1,"op":"list"}
 *            {"id":2,"op":"smart","disk":ID}
 *            {"id":3,"op":"serve","disk":ID,"confirmExistingData":true}
 *            {"id":4,"op":"stop","disk":ID}
 *            {"id":5,"op":"served"}
 * Replies:   {"id":N,"ok":true,"result":…} | {"id":N,"ok":false,"error":{"code":…,"message":…}}
 *            (id is null when the line could not be read as a request)
 * Events:    {"event":"ready",…} once at start, then disk-added,
 *            disk-removed, disk-changed and served-disk-lost as they happen.
 *
 * ID is a disk's `id` from `list` (wwn:…, serial:…, loop:…) or one of its
 * `byIdPaths`; `main/service/disk-helper-client.ts` is the client side.
 */
import * as v from 'valibot';

export const HELPER_PROTOCOL_VERSION = 1;

/** A request line longer than this is refused and the helper stops reading (the stream is out of step). */
export const MAX_LINE_BYTES = 64 * 1024;

const diskName = v.pipe(
  v.string('"disk" must be a string'),
  v.minLength(1, '"disk" must not be empty'),
  v.maxLength(4096, '"disk" must be at most 4096 characters'),
  v.check((s) => !s.includes('\0'), '"disk" must not contain NUL'),
);

const requestId = v.pipe(v.number('"id" must be a number'), v.safeInteger('"id" must be a whole number'), v.minValue(0, '"id" must not be negative'));

export const requestSchema = v.variant(
  'op',
  [
    v.strictObject({ id: requestId, op: v.literal('list') }),
    v.strictObject({ id: requestId, op: v.literal('served') }),
    v.strictObject({ id: requestId, op: v.literal('smart'), disk: diskName }),
    v.strictObject({
      id: requestId,
      op: v.literal('serve'),
      disk: diskName,
      /** Set only after the user confirmed, in the plan preview, that the disk's data will be lost. */
      confirmExistingData: v.optional(v.boolean('"confirmExistingData" must be true or false')),
    }),
    v.strictObject({ id: requestId, op: v.literal('stop'), disk: diskName }),
  ],
  'unknown "op": use list, served, smart, serve or stop',
);

export type HelperRequest = v.InferOutput<typeof requestSchema>;

/** Why a request failed; REFUSED_* codes are the safety refusals. */
export type HelperErrorCode =
  | 'BAD_REQUEST'
  | 'NOT_IN_INVENTORY'
  | 'REFUSED_SYSTEM_DISK'
  | 'REFUSED_MOUNTED'
  | 'REFUSED_HELD'
  | 'REFUSED_READ_ONLY'
  | 'REFUSED_EMPTY'
  | 'REFUSED_BUSY'
  | 'REFUSED_CHANGED'
  | 'ALREADY_SERVED'
  | 'NEEDS_CONFIRMATION'
  | 'NOT_SERVED'
  | 'SMART_FAILED'
  | 'FAILED';

export class HelperError extends Error {
  constructor(
    readonly code: HelperErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'HelperError';
  }
}

/** A disk the helper serves, and the URI that makes it a pool member. */
export interface ServedDisk {
  readonly disk: string;
  readonly path: string;
  readonly size: number;
  readonly exportName: string;
  readonly socket: string;
  readonly uri: string;
}

export type ParsedLine = { ok: true; request: HelperRequest } | { ok: false; id: number | null; message: string };

/** Parses and validates one request line; never throws. */
export function parseRequestLine(line: string): ParsedLine {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return { ok: false, id: null, message: 'a request must be one JSON object per line' };
  }
  const id = typeof (raw as { id?: unknown })?.id === 'number' && Number.isSafeInteger((raw as { id: number }).id) ? (raw as { id: number }).id : null;
  const result = v.safeParse(requestSchema, raw);
  if (!result.success) {
    const issue = result.issues[0];
    const where = issue.path?.map((p) => String(p.key)).join('.');
    const message = issue.type === 'strict_object' && where ? `unknown field "${where}"` : issue.message;
    return { ok: false, id, message };
  }
  return { ok: true, request: result.output };
}

export function replyLine(id: number | null, outcome: { result: unknown } | { error: HelperError }): string {
  if ('error' in outcome) return `${JSON.stringify({ id, ok: false, error: { code: outcome.error.code, message: outcome.error.message } })}\n`;
  return `${JSON.stringify({ id, ok: true, result: outcome.result })}\n`;
}

export function eventLine(event: string, body: Record<string, unknown>): string {
  return `${JSON.stringify({ event, ...body })}\n`;
}
