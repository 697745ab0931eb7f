export default async function globalTeardown(): Promise<void> {
  const stops = (globalThis as { __testStackStops?: (() => Promise<void>)[] }).__testStackStops ?? [];
  for (const stop of stops.reverse()) await stop().catch((error) => console.error('teardown:', error));
}
