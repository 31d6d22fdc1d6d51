// An ES module handler: handler `handler.main`.
export async function main(event, context) {
  return { message: `Hello, ${event.name ?? 'world'}, from an ES module!`, remainingMs: context.getRemainingTimeInMillis() };
}
