import { MemoryNetworkBus, MemoryNetworkDefinitions } from '../../src/net/memory-definitions.js';
import { networkDefinitionsConformance } from '../conformance/network-definitions.js';

networkDefinitionsConformance('MemoryNetworkDefinitions', async () => {
  const bus = new MemoryNetworkBus();
  const made: MemoryNetworkDefinitions[] = [];
  const host = () => {
    const m = new MemoryNetworkDefinitions(bus);
    made.push(m);
    return m;
  };
  return { a: host(), b: host(), host: async () => host(), cleanup: async () => void (await Promise.all(made.map((m) => m.stop()))) };
});
