import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Pool } from 'pg';
import { createTablesOnce } from '../infra/pg-transaction';

/**
 * API keys (bearer tokens), the way payment APIs keep them: a random secret shown once, stored only
 * as a hash, compared in constant time, revocable.
 *
 * - The secret is `tsk_<16 hex: the key id>_<43 base64url characters: 32 random bytes>`: 256 random
 *   bits, recognisable (secret scanners and people can tell what leaked), and it names its key, so
 *   a lookup is one primary-key read, never a search by secret.
 * - Only SHA-256 of the whole secret is stored. A slow password hash (bcrypt, scrypt, argon2) guards
 *   guessable, low-entropy passwords; a 256-bit random secret cannot be found from its SHA-256 by any
 *   search, and a fast hash keeps authentication cheap on every request.
 * - The stored hash is compared with crypto.timingSafeEqual.
 * - Lookups are cached for at most CACHE_MS (500 ms), so a key revoked through any instance is
 *   refused everywhere within a second (at once by the instance that revoked it).
 * - OPERATOR_API_KEY (the environment's bootstrap operator key) is compared in constant time too,
 *   as key id `env-operator`.
 *
 * Keys live in the read-model PostgreSQL database the API already uses (table `api_keys`), for either
 * event store. Key management is not a money movement and writes no events: each row records who
 * created and who revoked it (the acting key id).
 */
export const API_KEYS_TABLE = 'api_keys';
export const ENV_OPERATOR_KEY_ID = 'env-operator';

export type Role = 'operator' | 'customer';

/** Who a request acts as: the key that authenticated it. Never holds the secret. */
export interface Principal {
  keyId: string;
  role: Role;
  /** The owner whose accounts a customer key may see and move (customers only). */
  ownerId?: string;
}

export interface ApiKeyView {
  keyId: string;
  role: Role;
  ownerId: string | null;
  createdAt: string;
  createdBy: string;
  revokedAt: string | null;
  revokedBy: string | null;
}

export const API_KEYS_DDL = [
  `CREATE TABLE IF NOT EXISTS ${API_KEYS_TABLE} (
    key_id       text PRIMARY KEY,
    secret_hash  bytea NOT NULL,
    role         text NOT NULL CHECK (role IN ('operator', 'customer')),
    owner_id     text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   text NOT NULL,
    revoked_at   timestamptz,
    revoked_by   text,
    CHECK ((role = 'customer') = (owner_id IS NOT NULL))
  )`,
];

const SCHEMA_LOCK = 7_412_019;
const SECRET = /^tsk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const CACHE_MS = 500;
const CACHE_MAX = 10_000;

const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/** Constant-time equality of two secrets (of any lengths): their SHA-256 digests are compared. */
export function secretsEqual(a: string, b: string): boolean {
  return timingSafeEqual(sha256(a), sha256(b));
}

/** A new secret and the key id it embeds. */
export function newSecret(): { keyId: string; secret: string } {
  const id = randomBytes(8).toString('hex');
  return { keyId: `key_${id}`, secret: `tsk_${id}_${randomBytes(32).toString('base64url')}` };
}

/** The key id a well-formed secret names, or undefined (nothing is looked up for a malformed one). */
export function keyIdOf(secret: string): string | undefined {
  const match = SECRET.exec(secret);
  return match ? `key_${match[1]}` : undefined;
}

interface Row {
  key_id: string;
  secret_hash: Buffer;
  role: Role;
  owner_id: string | null;
  created_at: Date;
  created_by: string;
  revoked_at: Date | null;
  revoked_by: string | null;
}

const view = (row: Row): ApiKeyView => ({
  keyId: row.key_id,
  role: row.role,
  ownerId: row.owner_id,
  createdAt: row.created_at.toISOString(),
  createdBy: row.created_by,
  revokedAt: row.revoked_at?.toISOString() ?? null,
  revokedBy: row.revoked_by,
});

export class ApiKeyStore {
  private schema?: Promise<void>;
  private readonly cache = new Map<string, { row: Row | undefined; at: number }>();

  constructor(
    private readonly pool: Pool,
    /** OPERATOR_API_KEY: accepted as the operator key `env-operator`. */
    private readonly operatorApiKey?: string,
  ) {}

  /** Creates the table once per process (and again after a failed attempt), under an advisory lock: several processes may start at once. */
  ensureSchema(): Promise<void> {
    this.schema ??= (async () => {
      await createTablesOnce(this.pool, SCHEMA_LOCK, API_KEYS_DDL);
    })().catch((error: unknown) => {
      this.schema = undefined;
      throw error;
    });
    return this.schema;
  }

  /** The principal a bearer secret stands for, or undefined when it is unknown, malformed or revoked. */
  async authenticate(secret: string): Promise<Principal | undefined> {
    if (this.operatorApiKey !== undefined && secretsEqual(secret, this.operatorApiKey))
      return { keyId: ENV_OPERATOR_KEY_ID, role: 'operator' };
    const keyId = keyIdOf(secret);
    if (keyId === undefined) return undefined;
    const row = await this.lookup(keyId);
    if (!row || row.revoked_at !== null) return undefined;
    if (!timingSafeEqual(sha256(secret), row.secret_hash)) return undefined;
    return row.role === 'customer'
      ? { keyId: row.key_id, role: 'customer', ownerId: row.owner_id! }
      : { keyId: row.key_id, role: 'operator' };
  }

  private async lookup(keyId: string): Promise<Row | undefined> {
    const now = Date.now();
    const cached = this.cache.get(keyId);
    if (cached && now - cached.at < CACHE_MS) return cached.row;
    await this.ensureSchema();
    const result = await this.pool.query<Row>(`SELECT * FROM ${API_KEYS_TABLE} WHERE key_id = $1`, [keyId]);
    if (this.cache.size >= CACHE_MAX) this.cache.clear();
    this.cache.set(keyId, { row: result.rows[0], at: now });
    return result.rows[0];
  }

  /** A new key: its secret is in this answer only. */
  async create(
    role: Role,
    ownerId: string | undefined,
    createdBy: string,
  ): Promise<{ keyId: string; secret: string; role: Role; ownerId: string | null; createdAt: string }> {
    await this.ensureSchema();
    for (;;) {
      const { keyId, secret } = newSecret();
      const result = await this.pool.query<{ created_at: Date }>(
        `INSERT INTO ${API_KEYS_TABLE} (key_id, secret_hash, role, owner_id, created_by) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (key_id) DO NOTHING RETURNING created_at`,
        [keyId, sha256(secret), role, role === 'customer' ? ownerId : null, createdBy],
      );
      if (result.rows[0])
        return { keyId, secret, role, ownerId: role === 'customer' ? ownerId! : null, createdAt: result.rows[0].created_at.toISOString() };
      // 64-bit key ids: a collision is practically impossible, and simply drawn again.
    }
  }

  async list(): Promise<ApiKeyView[]> {
    await this.ensureSchema();
    const result = await this.pool.query<Row>(`SELECT * FROM ${API_KEYS_TABLE} ORDER BY created_at, key_id`);
    return result.rows.map(view);
  }

  /** Revokes a key (a no-op when already revoked). False when there is no such key. */
  async revoke(keyId: string, revokedBy: string): Promise<boolean> {
    await this.ensureSchema();
    const result = await this.pool.query(
      `UPDATE ${API_KEYS_TABLE} SET revoked_at = COALESCE(revoked_at, now()), revoked_by = COALESCE(revoked_by, $2) WHERE key_id = $1`,
      [keyId, revokedBy],
    );
    this.cache.delete(keyId);
    return (result.rowCount ?? 0) > 0;
  }
}
