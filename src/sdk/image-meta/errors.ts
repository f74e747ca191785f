// One error type for everything the image-meta library refuses, with a short
// machine-readable reason so the CLI and the drivers can map it (exit codes,
// SRError keys) without parsing messages. Messages name the bad value and the rule.
export type ImageMetaErrorReason =
  | 'invalid-json'
  | 'not-an-object'
  | 'empty-key'
  | 'duplicate-key'
  | 'bad-key'
  | 'unregistered-key'
  | 'bad-value'
  | 'too-long'
  | 'not-an-image'
  | 'no-room'
  | 'busy'
  | 'corrupt'
  | 'unsupported'
  | 'io';

export class ImageMetaError extends Error {
  override readonly name = 'ImageMetaError';
  readonly reason: ImageMetaErrorReason;
  /** The key the error is about, when there is one. */
  readonly key: string | undefined;

  constructor(reason: ImageMetaErrorReason, message: string, opts: { key?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.reason = reason;
    this.key = opts.key;
  }
}
