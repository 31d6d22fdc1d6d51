'use strict';
// Loaded by shim.js while an instance is generic, to warm the CommonJS loader. Never user code.
exports.handler = async (event, context) => ({ event, remaining: context.getRemainingTimeInMillis() });
