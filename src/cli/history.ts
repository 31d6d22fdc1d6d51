/**
 * `hearth invocations` and `hearth logs`: a function's stored invocation records and output, read
 * through the control API (GET /v1/functions/{name}/invocations and …/logs). `logs --follow`
 * asks again every second for lines since the last one printed, until interrupted.
 */
import type { ControlClient } from '../control/client.js';
import type { FlagValues } from './commands.js';
import { formatTable } from './format.js';

interface LogLine {
  time: string;
  invocationId: string;
  line: string;
}

export interface HistoryIo {
  print(s: string): void;
  /** Resolves after ms (tests pass a fake); a follow loop ends when `stopped()` says so. */
  sleep(ms: number): Promise<void>;
  stopped(): boolean;
}

export async function listInvocations(client: ControlClient, name: string, v: FlagValues, io: Pick<HistoryIo, 'print'>): Promise<number> {
  const q = v['last'] !== undefined ? `?last=${encodeURIComponent(String(v['last']))}` : '';
  const r = await client.call<{ invocations: Array<Record<string, unknown>> }>('GET', `/v1/functions/${encodeURIComponent(name)}/invocations${q}`);
  if (v['json']) {
    io.print(JSON.stringify(r, null, 2) + '\n');
    return 0;
  }
  const rows = r.invocations.map((i) => ({
    ...i,
    ended: new Date(i['endedAt'] as number).toISOString(),
    error: i['error'] ? `${String((i['error'] as { type: string }).type)}: ${String((i['error'] as { message: string }).message)}`.slice(0, 80) : null,
  }));
  io.print(formatTable(rows, ['ended', 'id', 'trigger', 'start', 'initMs', 'durationMs', 'outcome', 'error']));
  return 0;
}

export async function printLogs(client: ControlClient, name: string, v: FlagValues, io: HistoryIo): Promise<number> {
  const path = `/v1/functions/${encodeURIComponent(name)}/logs`;
  const show = (l: LogLine): void => io.print(v['json'] ? JSON.stringify(l) + '\n' : `${l.time} ${l.invocationId} ${l.line}\n`);
  let since = typeof v['since'] === 'string' ? v['since'] : '1h';
  // Lines of the invocations that ended at `since` were printed already; the next ask repeats them.
  let printedAtSince = new Set<string>();
  for (;;) {
    const r = await client.call<{ lines: LogLine[] }>('GET', `${path}?since=${encodeURIComponent(since)}`);
    let last = since;
    const atLast = new Set<string>();
    for (const l of r.lines) {
      if (l.time === since && printedAtSince.has(l.invocationId)) continue;
      show(l);
      if (l.time !== last) atLast.clear();
      last = l.time;
      atLast.add(l.invocationId);
    }
    if (last !== since) printedAtSince = atLast;
    else for (const id of atLast) printedAtSince.add(id);
    since = last;
    if (!v['follow']) return 0;
    await io.sleep(1000);
    if (io.stopped()) return 0;
  }
}
