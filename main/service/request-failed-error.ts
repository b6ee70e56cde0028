/** Thrown by a handler for a request that is valid but cannot be done; the host sends it as FAILED with the message. */
export class RequestFailedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RequestFailedError';
  }
}
