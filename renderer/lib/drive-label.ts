/**
 * Short names for members and drives: people recognise "disk3.img" or
 * "sdb on 10.0.0.2", not a 120-character URI.
 */
export function driveLabel(uri: string): string {
  if (uri.startsWith('file:')) {
    const path = uri.slice('file:'.length);
    return path.slice(path.lastIndexOf('/') + 1) || path;
  }
  try {
    const url = new URL(uri);
    const exportName = decodeURIComponent(url.pathname.replace(/^\//, ''));
    if (url.protocol === 'nbd+unix:') {
      const socket = url.searchParams.get('socket') ?? '';
      return exportName || socket.slice(socket.lastIndexOf('/') + 1) || uri;
    }
    return exportName ? `${exportName} on ${url.host}` : url.host;
  } catch {
    return uri;
  }
}

/** Where the drive lives, for the second line of a card. */
export function drivePath(uri: string): string {
  if (uri.startsWith('file:')) return uri.slice('file:'.length);
  return uri;
}

/** A message from the engine with every member URI in it replaced by the drive's short name. */
export function withDriveLabels(message: string): string {
  return message.replace(/\b(?:file:\/\S+|nbds?:\/\/\S+|nbd\+unix:\/\/\/\S*)/g, (uri) => {
    const trailing = /[.,;:)]+$/.exec(uri)?.[0] ?? '';
    return driveLabel(uri.slice(0, uri.length - trailing.length)) + trailing;
  });
}
