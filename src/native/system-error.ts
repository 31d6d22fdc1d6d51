/**
 * Node-style system errors built in TypeScript, shaped like the ones the addons throw
 * (native/napi/system-error.cc): `code` ('ETIMEDOUT'), negative `errno`, `syscall`, and a message
 * "CODE: description, syscall (detail)". Used by the fakes and by waits done in TypeScript.
 */
export function systemError(code: string, errno: number, syscall: string, message?: string): NodeJS.ErrnoException {
  const err = new Error(`${code}: ${message ?? code}, ${syscall}`) as NodeJS.ErrnoException;
  err.code = code;
  err.errno = -Math.abs(errno);
  err.syscall = syscall;
  return err;
}
