import { EventEmitter } from 'node:events';
import { Client, type ClientConfig } from 'pg';

export const APPEND_CHANNEL = 'es_events_appended';

/**
 * One LISTEN connection per store instance. Appends `pg_notify` in their own transaction, so the
 * wake-up arrives after commit. Subscribers also poll, so a lost notification (or a dropped LISTEN
 * connection, which this reconnects) only delays delivery by the poll interval.
 */
export class AppendNotifier {
  private readonly emitter = new EventEmitter();
  private client?: Client;
  private closed = false;
  private reconnectTimer?: NodeJS.Timeout;

  constructor(private readonly config: ClientConfig) {
    this.emitter.setMaxListeners(0);
  }

  async start(): Promise<void> {
    if (this.closed) return;
    const client = new Client(this.config);
    client.on('notification', () => this.emitter.emit('append'));
    client.on('error', () => this.scheduleReconnect());
    client.on('end', () => this.scheduleReconnect());
    try {
      await client.connect();
      await client.query(`LISTEN ${APPEND_CHANNEL}`);
      this.client = client;
      this.emitter.emit('append'); // we may have missed some while disconnected
    } catch {
      client.end().catch(() => undefined);
      this.scheduleReconnect();
    }
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    this.client = undefined;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.start();
    }, 1000);
  }

  onAppend(listener: () => void): () => void {
    this.emitter.on('append', listener);
    return () => this.emitter.off('append', listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const client = this.client;
    this.client = undefined;
    if (client) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
    }
  }
}
