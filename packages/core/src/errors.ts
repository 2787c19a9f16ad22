/**
 * An error caused by the user's input (a flag, a file, a dataset). CLIs print its message as one line
 * and exit non-zero, without a stack trace unless --verbose.
 */
export class GantryError extends Error {
  override readonly name = 'GantryError';
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
  }
}

/** Throws a GantryError unless `cond` holds. */
export function check(cond: unknown, message: string | (() => string)): asserts cond {
  if (!cond) throw new GantryError(typeof message === 'string' ? message : message());
}
