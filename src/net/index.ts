/** Private networks: gateways, instance namespaces, address planning. See docs/networks.md. */
export { NetworkManager, outerPeerName, type NetworkManagerOptions, type NetworkRecord } from './network-manager.js';
export type { InstanceNetns } from './gateway.js';
export { makeNftRunner, type NftRunner } from './nft-runner.js';
export { validateSpec, validateNetworkName, type NetworkSpec } from './spec.js';
export { DEFAULT_INNER_POOL, type InnerPoolConfig } from './address-plan.js';
export { loadNetBinding, type NetBinding } from './native-binding.js';
export { FakeNetBinding } from './fake-net-binding.js';
