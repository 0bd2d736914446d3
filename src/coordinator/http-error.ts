// An error the requester API answers with: an HTTP status, a stable code, a sentence, and any headers it needs.
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}
