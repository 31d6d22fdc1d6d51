// Loaded by shim.js while an instance is generic, to warm the ESM loader. Never user code.
export const handler = async (event) => ({ event });
