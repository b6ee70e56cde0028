/**
 * Finds a pool member the way people name one: its uuid, a unique prefix of
 * the uuid (as `git` takes commit prefixes), or the URI it was added with.
 */
import { normaliseMemberUri } from '../engine/member-uri.js';
import type { Member } from '../engine/member.js';
import type { Pool } from '../engine/pool.js';

/** Shorter prefixes match too much by chance to be a safe way to pick a disk to fail. */
const MIN_PREFIX = 4;

export class MemberNotFoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MemberNotFoundError';
  }
}

export function findMember(pool: Pool, ref: string): Member {
  const members = [...pool.members.values()];
  const exact = members.find((m) => m.uuid === ref.toLowerCase());
  if (exact) return exact;
  const uri = normalisedOrSelf(ref);
  const byUri = members.find((m) => m.label === ref || normalisedOrSelf(m.label) === uri);
  if (byUri) return byUri;
  if (ref.length >= MIN_PREFIX) {
    const matches = members.filter((m) => m.uuid.startsWith(ref.toLowerCase()));
    if (matches.length === 1) return matches[0]!;
    if (matches.length > 1) {
      throw new MemberNotFoundError(`"${ref}" matches ${matches.length} members of pool ${pool.name}; give more of the uuid`);
    }
  }
  throw new MemberNotFoundError(
    `pool ${pool.name} has no member "${ref}" (give its uuid, a prefix of at least ${MIN_PREFIX} characters, or its URI)`,
  );
}

function normalisedOrSelf(uri: string): string {
  try {
    return normaliseMemberUri(uri);
  } catch {
    return uri;
  }
}
