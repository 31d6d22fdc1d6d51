/**
 * The stores' conformance suites run against every implementation: FunctionRegistry (memory,
 * files) and CodeStore (memory, directory). A new implementation is added here.
 */
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DirCodeStore } from '../../src/registry/dir-code-store.js';
import { FileRegistry } from '../../src/registry/file-registry.js';
import { MemoryCodeStore } from '../../src/registry/memory-code-store.js';
import { MemoryRegistry } from '../../src/registry/registry.js';
import { codeStoreConformance } from '../conformance/code-store.js';
import { functionRegistryConformance } from '../conformance/function-registry.js';

const tmp = (prefix: string): Promise<string> => fsp.mkdtemp(path.join(os.tmpdir(), prefix));

functionRegistryConformance('MemoryRegistry', async (clock) => {
  const registry = new MemoryRegistry({ clock });
  return { registry, cleanup: () => registry.stop() };
});

functionRegistryConformance('FileRegistry', async (clock) => {
  const dir = await tmp('hearth-registry-');
  const registry = new FileRegistry({ stateDir: dir, clock, fsync: false });
  return {
    registry,
    cleanup: async () => {
      await registry.stop();
      await fsp.rm(dir, { recursive: true, force: true });
    },
  };
});

codeStoreConformance('MemoryCodeStore', async (limits) => {
  const store = new MemoryCodeStore({ ...(limits ? { limits } : {}) });
  await store.start();
  return { store, cleanup: () => store.stop() };
});

codeStoreConformance('DirCodeStore', async (limits) => {
  const dir = await tmp('hearth-code-store-');
  const store = new DirCodeStore(path.join(dir, 'store'), { fsync: false, ...(limits ? { limits } : {}) });
  await store.start();
  return {
    store,
    cleanup: async () => {
      await store.stop();
      await fsp.rm(dir, { recursive: true, force: true });
    },
  };
});
