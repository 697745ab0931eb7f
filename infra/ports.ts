import net from 'node:net';

export class PortInUseError extends Error {
  constructor(
    readonly port: number,
    readonly variable: string,
    readonly what: string,
  ) {
    super(`Port ${port} (${what}) is already in use. Stop whatever holds it, or choose another port with ${variable}=<port>.`);
    this.name = 'PortInUseError';
  }
}

/** True when nothing listens on host:port and we could bind it. */
export function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

export async function assertPortFree(port: number, variable: string, what: string): Promise<void> {
  if (!(await isPortFree(port))) throw new PortInUseError(port, variable, what);
}

/** A port the OS considers free right now (for tests that run beside other stacks). */
export function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ port: 0, host: '127.0.0.1' }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export async function waitFor<T>(what: string, attempt: () => Promise<T>, timeoutMs: number, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      return await attempt();
    } catch (error) {
      lastError = error;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }
  throw new Error(
    `Timed out after ${timeoutMs} ms waiting for ${what}: ${lastError instanceof Error ? lastError.message : String(lastError)}`,
  );
}
