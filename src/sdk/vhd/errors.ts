// Errors carry a positive errno: vhd-util exits with abs(errno) and prints `-errno`.
export const ENOENT = 2;
export const EIO = 5;
export const EEXIST = 17;
export const EINVAL = 22;
export const ENOSPC = 28;
export const ENOSYS = 38;
export const ELOOP = 40;

export class VhdError extends Error {
  constructor(
    readonly errno: number,
    message: string,
  ) {
    super(message);
    this.name = 'VhdError';
  }
}

/** errno of anything thrown: VhdError's, a Node system error's, else EIO. */
export function errnoOf(e: unknown): number {
  if (e instanceof VhdError) return e.errno;
  const code = (e as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ENOENT':
      return ENOENT;
    case 'EINVAL':
      return EINVAL;
    case 'ENOSPC':
      return ENOSPC;
    case 'EEXIST':
      return EEXIST;
    case 'EISDIR':
      return 21;
    case 'EACCES':
      return 13;
    case 'EPERM':
      return 1;
    case 'ENOTDIR':
      return 20;
    case 'ELOOP':
      return ELOOP;
    default:
      return EIO;
  }
}
