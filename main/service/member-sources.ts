/**
 * Opening the devices of pool members from their URIs, for the registry:
 * all or nothing when a client names members (one that cannot be opened is
 * the answer), as many as can be when the host re-imports a saved pool (the
 * pool comes up degraded, and the others are reported).
 */
import { openMember } from '../engine/member-uri.js';
import type { MemberSource } from '../engine/pool.js';

/** Opens every URI, or closes what it opened and throws the first failure. */
export async function openAllMembers(uris: readonly string[]): Promise<MemberSource[]> {
  const { opened, failures } = await openReachableMembers(uris);
  if (failures.length > 0) {
    await closeMembers(opened);
    throw failures[0]!.error;
  }
  return opened;
}

/** Opens what it can; says why the rest could not be. */
export async function openReachableMembers(
  uris: readonly string[],
): Promise<{ opened: MemberSource[]; failures: Array<{ uri: string; error: Error }> }> {
  const results = await Promise.allSettled(uris.map(async (uri) => ({ uri, device: await openMember(uri) })));
  const opened: MemberSource[] = [];
  const failures: Array<{ uri: string; error: Error }> = [];
  results.forEach((r, i) => {
    if (r.status === 'fulfilled') opened.push(r.value);
    else failures.push({ uri: uris[i]!, error: r.reason instanceof Error ? r.reason : new Error(String(r.reason)) });
  });
  return { opened, failures };
}

export async function closeMembers(sources: readonly MemberSource[]): Promise<void> {
  await Promise.all(sources.map((s) => s.device.close().catch(() => {})));
}
