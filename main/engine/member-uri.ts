/**
 * Opens a member from the URI a user gives: `file:PATH` (an image file),
 * `nbd+unix:///EXPORT?socket=PATH` or `nbd://HOST[:PORT]/EXPORT` (any NBD
 * server: our privileged helper, nbdkit, qemu-nbd, a remote machine).
 */
import { resolve } from 'node:path';
import type { BlockDevice } from '../nbd/block-device.js';
import { NbdClient } from '../nbd/client.js';
import { FileBlockDevice } from '../nbd/file-device.js';
import { alignedWrites, checksummedReads } from './checksum.js';

export class MemberUriError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MemberUriError';
  }
}

/** Checks a member URI's form without opening it; returns it normalised (file paths made absolute). */
export function normaliseMemberUri(uri: string): string {
  if (uri.startsWith('file:')) {
    const path = uri.slice('file:'.length).replace(/^\/\/(?=\/)/, '');
    if (path === '') throw new MemberUriError(`member "${uri}" names no file`);
    return `file:${resolve(path)}`;
  }
  if (uri.startsWith('nbd+unix:') || uri.startsWith('nbd:') || uri.startsWith('nbds:')) return uri;
  throw new MemberUriError(`member "${uri}" is not a member URI: use file:PATH, nbd+unix:///EXPORT?socket=PATH or nbd://HOST:PORT/EXPORT`);
}

export async function openMember(uri: string): Promise<BlockDevice> {
  const normal = normaliseMemberUri(uri);
  try {
    if (normal.startsWith('file:')) return await FileBlockDevice.open(normal.slice('file:'.length), { checksummedReads, alignedWrites });
    return await NbdClient.connect(normal);
  } catch (error) {
    throw new MemberUriError(`cannot open member ${uri}: ${(error as Error).message}`);
  }
}
