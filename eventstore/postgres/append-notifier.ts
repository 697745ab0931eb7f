import { EventEmitter } from 'node:events';
import { Client, type ClientConfig } from 'pg';
import { reportSafely, type StoreErrorListener } from './store-errors';

export const APPEND_CHANNEL = 'es_events_appended';

/**
 * Wakes subscribers when events were appended, in this process and in others.
 * - One LISTEN connection per store instance.
 * - After an append has committed, `signal()` wakes local subscribers at once and sends a NOTIFY
 *   on the LISTEN connection. NOTIFYs are coalesced: while one is in flight, later signals fold
 *   into a single follow-up. (A NOTIFY inside the append's own transaction would serialise every
 *   committing appender on PostgreSQL's notification queue lock: measured at 2x slower appends.)
 * - Subscribers also poll, so a lost notification (or a dropped LISTEN connection, which this
 *   reconnects) only delays delivery by the poll interval.
 */
export class AppendNotifier {
  private readonly emitter = new EventEmitter();
  private client?: Client;
  private closed = false;
  private reconnectTimer?: NodeJS.Timeout;

  constructor(
    private readonly config: ClientConfig,
    /** Told when the LISTEN connection cannot be made (it is tried again every second). */
    private readonly onError?: StoreErrorListener,
  ) {
    this.emitter.setMaxListeners(0);
  }

  async start(): Promise<void> {
    if (this.closed) return;
    const client = new Client(this.config);
    // Our own NOTIFYs come back on this connection too: local subscribers were woken by signal() already. (An event
    // still held back behind an older transaction when they read is found by their held-back recheck.)
    client.on('notification', (message) => {
      if (message.processId !== (client as unknown as { processID?: number }).processID) this.wakeLocal();
    });
    // The connection died (server restart, backend terminated, network): drop it and reconnect.
    // The 'error' listener stays for the client's whole life: an 'error' event without one ends the process.
    let gone = false;
    const lost = () => {
      if (gone) return;
      gone = true;
      if (this.client !== undefined && this.client !== client) return; // an older connection, already replaced
      client.removeAllListeners('notification');
      client.end().catch(() => undefined); // already broken: ending it may fail, it is dropped either way
      this.scheduleReconnect();
    };
    client.on('error', lost);
    client.on('end', lost);
    try {
      await client.connect();
      await client.query(`LISTEN ${APPEND_CHANNEL}`);
      if (this.closed) {
        // close() ran while we were (re)connecting: do not leave this connection behind.
        client.removeAllListeners('end');
        await client.end().catch(() => undefined); // a broken connection may fail to close: it is dropped either way
        return;
      }
      this.client = client;
      this.wakeLocal(); // we may have missed some while disconnected
    } catch (error) {
      if (!this.closed) reportSafely(this.onError, error, 'append notifications (LISTEN); polling until it reconnects');
      client.end().catch(() => undefined); // a connection that failed to start may fail to end too: it is dropped either way
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

  private notifyInFlight = false;
  private notifyAgain = false;

  /** Called after an append committed. */
  signal(): void {
    this.wakeLocal();
    if (this.notifyInFlight) {
      this.notifyAgain = true;
      return;
    }
    const client = this.client;
    if (!client) return;
    this.notifyInFlight = true;
    client
      .query(`NOTIFY ${APPEND_CHANNEL}`)
      .catch(() => undefined) // a lost notification delays other processes' readers by one poll interval, no more
      .finally(() => {
        this.notifyInFlight = false;
        if (this.notifyAgain) {
          this.notifyAgain = false;
          this.signal();
        }
      });
  }

  /**
   * How many append notifications this process has seen (its own appends and others'): a read started at generation
   * g has seen every append announced up to g (SharedLogReads).
   */
  get generation(): number {
    return this.wakes;
  }

  private wakes = 0;

  private wakeLocal(): void {
    this.wakes += 1;
    this.emitter.emit('append');
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
      await client.end().catch(() => undefined); // a broken connection may fail to close: it is dropped either way
    }
  }
}
