// The smallest Node.js function: handler `index.handler`.
exports.handler = async (event, context) => {
  console.log(`hello from ${context.functionName}`);
  return { message: `Hello, ${event.name ?? 'world'}!`, runtime: 'node', requestId: context.invocationId };
};
