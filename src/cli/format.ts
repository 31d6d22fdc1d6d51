/** How the CLI prints API answers for people: tables, and JSON with short numbers and one-line lists. */

/** A fraction rounded for reading: 2 decimals from 1 up, 3 significant digits below (2.360232 → 2.36, 0.012345 → 0.0123). */
export function roundForDisplay(x: number): number {
  if (!Number.isFinite(x) || Number.isInteger(x)) return x;
  return Math.abs(x) >= 1 ? Math.round(x * 100) / 100 : Number(x.toPrecision(3));
}

/**
 * JSON indented by two spaces, except that an array of numbers, strings, booleans or nulls stays on
 * one line (`"buckets": [0, 3, 1, …]`), and fractions are rounded (roundForDisplay).
 */
export function formatJson(value: unknown, indent = ''): string {
  if (typeof value === 'number') return JSON.stringify(roundForDisplay(value));
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  const inner = indent + '  ';
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    if (value.every((v) => v === null || typeof v !== 'object')) return '[' + value.map((v) => formatJson(v)).join(', ') + ']';
    return '[\n' + value.map((v) => inner + formatJson(v, inner)).join(',\n') + '\n' + indent + ']';
  }
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
  if (entries.length === 0) return '{}';
  return '{\n' + entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${formatJson(v, inner)}`).join(',\n') + '\n' + indent + '}';
}

/** A table with upper-case column titles; missing values print as `-`, lists comma-joined. */
export function formatTable(rows: Array<Record<string, unknown>>, cols: string[]): string {
  const cell = (x: unknown): string =>
    x === undefined || x === null
      ? '-'
      : Array.isArray(x)
        ? x.length
          ? x.join(',')
          : '-'
        : typeof x === 'number'
          ? String(roundForDisplay(x))
          : typeof x === 'string'
            ? x
            : JSON.stringify(x);
  const cells = rows.map((r) => cols.map((c) => cell(r[c])));
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i].length)));
  const line = (vals: string[]): string =>
    vals
      .map((s, i) => s.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(cols.map((c) => c.toUpperCase())), ...cells.map(line)].join('\n') + '\n';
}

/** `GET /v1/networks` rows flattened for the table: the definition's fields sit under `spec`. */
export function networkRows(networks: Array<Record<string, unknown>>): Array<Record<string, unknown>> {
  return networks.map((n) => {
    const spec = (n['spec'] ?? {}) as Record<string, unknown>;
    const attach = (spec['attach'] ?? {}) as { netns?: string; bridge?: string };
    return {
      ...n,
      address: spec['address'],
      routes: spec['routes'],
      allow: spec['allow'],
      bridge: attach.netns ? `${attach.netns}/${String(attach.bridge)}` : attach.bridge,
    };
  });
}

/** `/v1/health`'s `cluster.hosts` for the table: counts per name as `name:n`, this host marked. */
export function hostRows(hosts: Array<Record<string, unknown>>, self: string | undefined): Array<Record<string, unknown>> {
  const counts = (x: unknown): string =>
    Object.entries((x ?? {}) as Record<string, number>)
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${k}:${n}`)
      .join(' ') || '-';
  return hosts.map((h) => ({
    host: h['hostId'] === self ? `${String(h['hostId'])} (this)` : h['hostId'],
    seenMsAgo: h['lastSeenMsAgo'],
    busy: h['busy'],
    idleWarm: counts(h['idleWarm']),
    freeGeneric: counts(h['freeGeneric']),
    memoryMb: h['memoryInUseMb'],
  }));
}
