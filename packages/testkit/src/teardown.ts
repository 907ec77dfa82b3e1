/**
 * A test's closers, run last-added first once it ends: what was made last (a browser, a client)
 * goes before what it needs (the server, the network under both). node:test runs a test's own
 * after-hooks in the order they were added, which would take a network's addresses away while its
 * clients still wait on them.
 */
export function teardown(t: { after(fn: () => unknown): void }): (close: () => unknown) => void {
  const closers: Array<() => unknown> = [];
  t.after(async () => {
    for (const close of closers.reverse()) await close();
  });
  return (close) => {
    closers.push(close);
  };
}
