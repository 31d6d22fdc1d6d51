/**
 * HTTP/1.1 message syntax shared by the control server (src/control/http1.ts) and its client
 * (src/control/client.ts): field lines, Content-Length and chunk-size lines (RFC 9110/9112).
 * Pure functions on latin1 text; each returns undefined (or a fault) instead of throwing, so each
 * side reports a bad message its own way (the server with a 400, the client with a ProtocolError).
 */

/** A token (method, field name): RFC 9110 §5.6.2. */
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Field values: visible ASCII, obs-text, space and tab; no CR, LF, NUL or other controls. */
export const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const DECIMAL = /^\d{1,15}$/;
const CHUNK_SIZE = /^([0-9A-Fa-f]{1,12})[\t ]*(?:;.*)?$/;

export type FieldLine =
  | { name: string; value: string }
  /** `colon`: no name before a colon; `name`: not a token (also whitespace before the colon or a folded line); `value`: a control character. */
  | { fault: 'colon' | 'name' | 'value'; name?: string };

/** Splits `name: value` (value without surrounding spaces and tabs); the name keeps its case. */
export function parseFieldLine(line: string): FieldLine {
  const colon = line.indexOf(':');
  if (colon <= 0) return { fault: 'colon' };
  const name = line.slice(0, colon);
  if (!TOKEN.test(name)) return { fault: 'name' };
  const value = line.slice(colon + 1).replace(/^[\t ]+|[\t ]+$/g, '');
  if (!FIELD_VALUE.test(value)) return { fault: 'value', name };
  return { name, value };
}

/**
 * The length a Content-Length field value declares: a decimal of at most 15 digits, or a list of
 * identical ones (a repeated field, RFC 9110 §8.6). Undefined when invalid or conflicting.
 */
export function parseContentLength(value: string): number | undefined {
  const values = value.split(',').map((v) => v.trim());
  if (!values.every((v) => v === values[0]) || !DECIMAL.test(values[0])) return undefined;
  return Number(values[0]);
}

/** The size a chunk-size line (without its CRLF) declares, extensions ignored; undefined when malformed. */
export function parseChunkSize(line: string): number | undefined {
  const m = CHUNK_SIZE.exec(line);
  return m ? parseInt(m[1], 16) : undefined;
}
