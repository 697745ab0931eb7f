import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { createTablesOnce } from '../infra/pg-transaction';

/**
 * Idempotency keys of the account writes (Stripe's convention): what the first request with a key
 * answered, kept at least 24 h, in the read-model PostgreSQL database the API already uses (for
 * either event store).
 *
 * A row is claimed before the write (INSERT ... ON CONFLICT DO NOTHING): the one request that
 * inserts it owns the key for a short lease; the others with the same key wait for its answer. The
 * row also records the account's revision before the first attempt (`base_revision`): every event
 * this key can ever write lies after it, so a retry that takes over a claim whose owner crashed can
 * look for those events (their ids are derived from the key) instead of writing again.
 *
 * The row is not what makes the write safe: the write itself is idempotent (deterministic event
 * ids, an expected revision, a look for the key's own events before deciding). The row makes the
 * answer the same and lets concurrent duplicates wait instead of racing.
 */
export const IDEMPOTENCY_KEYS_TABLE = 'api_idempotency_keys';

/** The migration: one table and one index, created if absent (under an advisory lock: several processes may start at once). */
export const IDEMPOTENCY_KEYS_DDL = [
  `CREATE TABLE IF NOT EXISTS ${IDEMPOTENCY_KEYS_TABLE} (
    scope          text NOT NULL,
    key            text NOT NULL,
    fingerprint    text NOT NULL,
    base_revision  bigint NOT NULL,
    owner          uuid,
    locked_until   timestamptz,
    status         smallint,
    headers        jsonb,
    body           text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    completed_at   timestamptz,
    PRIMARY KEY (scope, key)
  )`,
  `CREATE INDEX IF NOT EXISTS ${IDEMPOTENCY_KEYS_TABLE}_created_at ON ${IDEMPOTENCY_KEYS_TABLE} (created_at)`,
];

const SCHEMA_LOCK = 7_412_017;

export async function ensureIdempotencySchema(pool: Pool): Promise<void> {
  await createTablesOnce(pool, SCHEMA_LOCK, IDEMPOTENCY_KEYS_DDL);
}

/** An answer as sent: replayed byte for byte. */
export interface StoredResponse {
  status: number;
  // eslint-disable-next-line no-restricted-syntax -- response header names this service set, never outside input
  headers: Record<string, string>;
  /** The body exactly as sent (JSON text). */
  body: string;
}

export type Claim =
  /** This attempt owns the key: run the write. `takenOver`: an earlier owner left it unfinished (crashed or failed). */
  | { kind: 'owner'; owner: string; baseRevision: bigint; takenOver: boolean }
  /** The key already has an answer for this same request. */
  | { kind: 'replay'; response: StoredResponse }
  /** The key was used for another request. */
  | { kind: 'mismatch' }
  /** Another attempt with this key is still running (waited as long as allowed). */
  | { kind: 'in_progress' };

export interface IdempotencyStoreOptions {
  /** How long a claim stays with its owner before another attempt may take it over. Default 10 s. */
  leaseMs?: number;
  /** How long a duplicate waits for the owner's answer before answering "in progress". Default 15 s. */
  maxWaitMs?: number;
  /** Poll interval while waiting. Default 50 ms. */
  pollMs?: number;
  /** How long keys are kept (at least 24 h, Stripe's convention). Default 24 h. */
  retentionMs?: number;
  /** At most one purge of expired keys per this interval (lazily, on a claim). Default 60 s. */
  purgeEveryMs?: number;
}

interface Row {
  fingerprint: string;
  base_revision: string;
  status: number | null;
  // eslint-disable-next-line no-restricted-syntax -- response header names this service set, never outside input
  headers: Record<string, string> | null;
  body: string | null;
  expired: boolean;
}

const DAY_MS = 24 * 60 * 60 * 1000;

export class IdempotencyStore {
  private schema?: Promise<void>;
  private lastPurge = 0;
  readonly leaseMs: number;
  readonly maxWaitMs: number;
  readonly pollMs: number;
  readonly retentionMs: number;
  readonly purgeEveryMs: number;

  constructor(
    private readonly pool: Pool,
    options: IdempotencyStoreOptions = {},
    private readonly onError: (what: string, error: unknown) => void = () => undefined,
  ) {
    this.leaseMs = options.leaseMs ?? 10_000;
    this.maxWaitMs = options.maxWaitMs ?? 15_000;
    this.pollMs = options.pollMs ?? 50;
    this.retentionMs = Math.max(options.retentionMs ?? DAY_MS, DAY_MS);
    this.purgeEveryMs = options.purgeEveryMs ?? 60_000;
  }

  /** Creates the table once per process (and again after a failed attempt). */
  ensureSchema(): Promise<void> {
    this.schema ??= ensureIdempotencySchema(this.pool).catch((error: unknown) => {
      this.schema = undefined;
      throw error;
    });
    return this.schema;
  }

  /**
   * Claims (scope, key) for a request with this fingerprint, or answers what the key already has.
   * `baseRevision`: the account's revision now (-1 when it has no stream), recorded with a new claim.
   * A claim held by a live owner is waited for; an expired one is taken over.
   */
  async claim(scope: string, key: string, fingerprint: string, baseRevision: bigint): Promise<Claim> {
    await this.ensureSchema();
    this.maybePurge();
    const owner = randomUUID();
    const inserted = await this.pool.query<{ base_revision: string }>(
      `INSERT INTO ${IDEMPOTENCY_KEYS_TABLE} (scope, key, fingerprint, base_revision, owner, locked_until)
       VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))
       ON CONFLICT (scope, key) DO NOTHING
       RETURNING base_revision::text AS base_revision`,
      [scope, key, fingerprint, baseRevision.toString(), owner, this.leaseMs / 1000],
    );
    if (inserted.rows[0]) return { kind: 'owner', owner, baseRevision: BigInt(inserted.rows[0].base_revision), takenOver: false };

    const deadline = Date.now() + this.maxWaitMs;
    for (;;) {
      const row = await this.read(scope, key);
      if (!row) {
        // Purged between our insert and this read (expired): claim it afresh.
        return this.claim(scope, key, fingerprint, baseRevision);
      }
      if (row.fingerprint !== fingerprint) return { kind: 'mismatch' };
      if (row.status !== null) return { kind: 'replay', response: toResponse(row) };
      if (row.expired) {
        const taken = await this.pool.query<{ base_revision: string }>(
          `UPDATE ${IDEMPOTENCY_KEYS_TABLE} SET owner = $3, locked_until = now() + make_interval(secs => $4)
           WHERE scope = $1 AND key = $2 AND status IS NULL AND locked_until <= now()
           RETURNING base_revision::text AS base_revision`,
          [scope, key, owner, this.leaseMs / 1000],
        );
        if (taken.rows[0]) return { kind: 'owner', owner, baseRevision: BigInt(taken.rows[0].base_revision), takenOver: true };
        continue; // another attempt took it over first: wait for it
      }
      if (Date.now() >= deadline) return { kind: 'in_progress' };
      await new Promise((resolve) => setTimeout(resolve, this.pollMs));
    }
  }

  /**
   * Records the answer. The first answer recorded wins (an owner whose lease was taken over may
   * finish too): the answer to send is the one returned.
   */
  async complete(scope: string, key: string, response: StoredResponse): Promise<StoredResponse> {
    const updated = await this.pool.query(
      `UPDATE ${IDEMPOTENCY_KEYS_TABLE}
       SET status = $3, headers = $4, body = $5, owner = NULL, locked_until = NULL, completed_at = now()
       WHERE scope = $1 AND key = $2 AND status IS NULL`,
      [scope, key, response.status, JSON.stringify(response.headers), response.body],
    );
    if (updated.rowCount === 1) return response;
    const row = await this.read(scope, key);
    return row && row.status !== null ? toResponse(row) : response;
  }

  /** The attempt failed without an answer (e.g. the store was unavailable): a retry may take the key over at once. */
  async release(scope: string, key: string, owner: string): Promise<void> {
    await this.pool.query(
      `UPDATE ${IDEMPOTENCY_KEYS_TABLE} SET locked_until = now() WHERE scope = $1 AND key = $2 AND owner = $3 AND status IS NULL`,
      [scope, key, owner],
    );
  }

  /** The claim was no use of the key after all (nothing written, no answer to keep): forget it. */
  async abandon(scope: string, key: string, owner: string): Promise<void> {
    await this.pool.query(`DELETE FROM ${IDEMPOTENCY_KEYS_TABLE} WHERE scope = $1 AND key = $2 AND owner = $3 AND status IS NULL`, [
      scope,
      key,
      owner,
    ]);
  }

  /** Deletes keys older than the retention (bounded batch). Returns how many went. */
  async purgeExpired(limit = 1000): Promise<number> {
    await this.ensureSchema();
    const result = await this.pool.query(
      `DELETE FROM ${IDEMPOTENCY_KEYS_TABLE} WHERE ctid IN (
         SELECT ctid FROM ${IDEMPOTENCY_KEYS_TABLE} WHERE created_at < now() - make_interval(secs => $1) LIMIT $2)`,
      [this.retentionMs / 1000, limit],
    );
    return result.rowCount ?? 0;
  }

  private maybePurge(): void {
    const now = Date.now();
    if (now - this.lastPurge < this.purgeEveryMs) return;
    this.lastPurge = now;
    this.purgeExpired().catch((error: unknown) => this.onError('purge of expired idempotency keys failed', error));
  }

  private async read(scope: string, key: string): Promise<Row | undefined> {
    const result = await this.pool.query<Row>(
      `SELECT fingerprint, base_revision::text AS base_revision, status, headers, body, (locked_until IS NULL OR locked_until <= now()) AS expired
       FROM ${IDEMPOTENCY_KEYS_TABLE} WHERE scope = $1 AND key = $2`,
      [scope, key],
    );
    return result.rows[0];
  }
}

function toResponse(row: Row): StoredResponse {
  return { status: row.status!, headers: row.headers ?? {}, body: row.body ?? '' };
}
