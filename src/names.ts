/**
 * The naming rules, one place for each, checked by every layer that takes a name. Leaf module: it
 * imports nothing but the error type, so any layer may use it.
 *
 * - Function names (control API, registry, event queue): also file names in the state directory
 *   and keys in the queue's database, so kept strict: 1 to 64 of A-Z a-z 0-9 _ -.
 * - Network names (net/, and a function's `network` field): stricter still, because they also
 *   name kernel and nftables objects and read as host names: a DNS label (1 to 63 lowercase
 *   letters, digits and inner dashes).
 */
import { HearthError } from './errors.js';

/** Network names: a DNS label, `^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$`. */
export const NETWORK_NAME_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Function names: `^[A-Za-z0-9_-]{1,64}$`. */
export const NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** True when `name` is a valid function name. */
export function isFunctionName(name: unknown): name is string {
  return typeof name === 'string' && NAME_PATTERN.test(name);
}

/** `name` as the error messages show it: quoted and cut at 80 characters, or its type. */
export function shownName(name: unknown): string {
  return typeof name === 'string' ? JSON.stringify(name.length > 80 ? name.slice(0, 80) + '…' : name) : typeof name;
}

/** Throws INVALID_NAME unless `name` matches `^[A-Za-z0-9_-]{1,64}$`. Returns it. */
export function validateFunctionName(name: unknown, what = 'function'): string {
  if (!isFunctionName(name)) {
    throw new HearthError('INVALID_NAME', `invalid ${what} name ${shownName(name)}: must match ^[A-Za-z0-9_-]{1,64}$`);
  }
  return name;
}
