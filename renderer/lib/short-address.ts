/** An NBD address with the socket's folder shortened: the export name is what people look for; Copy takes the whole. */
export function shortAddress(uri: string): string {
  return uri.replace(/socket=(.*)$/, (_all, path: string) => {
    const parts = path.split('/');
    return `socket=${parts.length > 3 ? '…/' + parts.slice(-2).join('/') : path}`;
  });
}
