import { SEARCH_ATTRIBUTES } from '../../infra/temporal-dev-server';
/**
 * Static checks of docker-compose.yml: no Docker engine runs here, so this reads the file the way
 * `docker compose` would (YAML with merge keys, then ${VAR} interpolation) and checks that the
 * services are wired to each other: host names are service names, ports match what the target
 * listens on, credentials match, depends_on targets exist and can reach their condition, and every
 * app environment passes our own loadConfig. And the network boundary (docs/production-shape.md):
 * only the API is published on every interface, the UIs on loopback only, no password has a
 * default, EventStoreDB runs with TLS from the certificates job and our processes verify it.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'fs';
import path from 'path';
import { parse } from 'yaml';
import { parseConnectionString } from '@eventstore/db-client/dist/Client/parseConnectionString';
import { loadConfig } from '../../config/config';

const ROOT = path.resolve(__dirname, '../..');
const COMPOSE_FILE = path.join(ROOT, 'docker-compose.yml');

type Env = Record<string, string | undefined>;
type Service = Record<string, unknown>;
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

const APP_SERVICES = ['api', 'worker', 'projections'] as const;
const ALL_SERVICES = ['postgres', 'temporal', 'temporal-ui', 'eventstore-certs', 'eventstore', ...APP_SERVICES] as const;

// ---------------------------------------------------------------------------------------------
// Reading the file like compose does
// ---------------------------------------------------------------------------------------------

/** Compose interpolation: $$, $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e}, ${VAR?e}, ${VAR:+a}, ${VAR+a}. */
function interpolate(text: string, env: Env, where: string): string {
  return text.replace(/\$(?:(\$)|\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g, (match, dollar?: string, braced?: string, bare?: string) => {
    if (dollar) return '$';
    if (bare !== undefined) return required(bare, env[bare], where);
    const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([\s\S]*))?$/.exec(braced ?? '');
    if (!m) throw new Error(`${where}: invalid interpolation ${match}`);
    const [, name = '', op, arg = ''] = m;
    if (arg.includes('$')) throw new Error(`${where}: nested interpolation in ${match} is not supported by this test`);
    const value = env[name];
    const set = value !== undefined;
    const nonEmpty = set && value !== '';
    switch (op) {
      case undefined:
        return required(name, value, where);
      case ':-':
        return nonEmpty ? value : arg;
      case '-':
        return set ? value : arg;
      case ':?':
        if (!nonEmpty) throw new Error(`${where}: ${name} must be set (${arg})`);
        return value;
      case '?':
        if (!set) throw new Error(`${where}: ${name} must be set (${arg})`);
        return value;
      case ':+':
        return nonEmpty ? arg : '';
      case '+':
        return set ? arg : '';
      default:
        throw new Error(`${where}: unsupported interpolation ${match}`);
    }
  });
}

/** A variable without a default would silently become '' in compose: treat that as a mistake. */
function required(name: string, value: string | undefined, where: string): string {
  if (value === undefined) throw new Error(`${where}: \${${name}} has no default and is not set; compose would substitute ''`);
  return value;
}

function interpolateDeep(value: unknown, env: Env, where: string): unknown {
  if (typeof value === 'string') return interpolate(value, env, where);
  if (Array.isArray(value)) return value.map((v, i) => interpolateDeep(v, env, `${where}[${i}]`));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolateDeep(v, env, `${where}.${k}`)]));
  }
  return value;
}

function loadCompose(env: Env = {}): Compose {
  const doc: unknown = parse(readFileSync(COMPOSE_FILE, 'utf8'), { merge: true });
  const interpolated = interpolateDeep(doc, env, 'docker-compose.yml');
  if (!isRecord(interpolated) || !isRecord(interpolated.services)) throw new Error('docker-compose.yml has no services map');
  return interpolated as unknown as Compose;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

// ---------------------------------------------------------------------------------------------
// Accessors for compose's alternative syntaxes
// ---------------------------------------------------------------------------------------------

function service(compose: Compose, name: string): Service {
  const svc = compose.services[name];
  if (!isRecord(svc)) throw new Error(`service '${name}' is not defined`);
  return svc;
}

/** `environment:` as a map (values may be numbers/booleans/null) or a list of KEY=VALUE / KEY. */
function environmentOf(svc: Service): Env {
  const raw = svc.environment;
  if (raw === undefined) return {};
  if (Array.isArray(raw)) {
    const env: Env = {};
    for (const entry of raw) {
      const s = String(entry);
      const eq = s.indexOf('=');
      // A bare KEY takes its value from the shell running compose: unknown here.
      if (eq === -1) env[s] = undefined;
      else env[s.slice(0, eq)] = s.slice(eq + 1);
    }
    return env;
  }
  if (isRecord(raw)) {
    return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, v === null || v === undefined ? undefined : String(v)]));
  }
  throw new Error(`environment must be a map or a list, got ${JSON.stringify(raw)}`);
}

interface PortMapping {
  hostIp?: string;
  published?: number;
  target: number;
  protocol: string;
}

/** `ports:` short syntax ("[ip:][published:]target[/proto]", or a number) or long syntax. */
function portsOf(svc: Service): PortMapping[] {
  const raw = svc.ports ?? [];
  if (!Array.isArray(raw)) throw new Error('ports must be a list');
  return raw.map((p): PortMapping => {
    if (typeof p === 'number') return { target: p, protocol: 'tcp' };
    if (isRecord(p)) {
      return {
        hostIp: p.host_ip === undefined ? undefined : String(p.host_ip),
        published: p.published === undefined ? undefined : toPort(p.published),
        target: toPort(p.target),
        protocol: String(p.protocol ?? 'tcp'),
      };
    }
    const [spec = '', protocol = 'tcp'] = String(p).split('/');
    const parts = spec.split(':');
    if (parts.some((x) => x.includes('-'))) throw new Error(`port ranges are not supported by this test: ${String(p)}`);
    const target = toPort(parts.pop());
    const published = parts.length ? toPort(parts.pop()) : undefined;
    const hostIp = parts.length ? parts.join(':') : undefined;
    return { hostIp, published, target, protocol };
  });
}

function toPort(v: unknown): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`not a port: ${JSON.stringify(v)}`);
  return n;
}

/** `depends_on:` as a list of names or a map name → { condition }. */
function dependsOnOf(svc: Service): Record<string, string> {
  const raw = svc.depends_on;
  if (raw === undefined) return {};
  if (Array.isArray(raw)) return Object.fromEntries(raw.map((n) => [String(n), 'service_started']));
  if (isRecord(raw)) {
    return Object.fromEntries(
      Object.entries(raw).map(([n, v]) => [n, isRecord(v) && v.condition !== undefined ? String(v.condition) : 'service_started']),
    );
  }
  throw new Error(`depends_on must be a list or a map, got ${JSON.stringify(raw)}`);
}

/** `command:` / `entrypoint:` as a list or a string (split on whitespace, good enough here). */
function argv(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  if (Array.isArray(value)) return value.map(String);
  return String(value).trim().split(/\s+/);
}

/** `volumes:` entries of a service, short ("src:dst[:mode]") or long syntax. */
interface Mount {
  type: 'volume' | 'bind';
  source: string;
  target: string;
  readOnly: boolean;
}

function volumesOf(svc: Service): Mount[] {
  const raw = svc.volumes ?? [];
  if (!Array.isArray(raw)) throw new Error('volumes must be a list');
  return raw.map((v) => {
    if (isRecord(v)) {
      const source = String(v.source ?? '');
      return { type: v.type === 'bind' ? 'bind' : 'volume', source, target: String(v.target), readOnly: v.read_only === true };
    }
    const [source = '', target = '', mode = ''] = String(v).split(':');
    const bind = source.startsWith('.') || source.startsWith('/') || source.startsWith('~');
    return { type: bind ? 'bind' : 'volume', source, target, readOnly: mode.split(',').includes('ro') };
  });
}

/** The mount of a service that holds this path (the longest matching target), and the path inside its volume. */
function mountOf(svc: Service, file: string): { mount: Mount; rest: string } | undefined {
  const found = volumesOf(svc)
    .filter((m) => file === m.target || file.startsWith(`${m.target.replace(/\/$/, '')}/`))
    .sort((a, b) => b.target.length - a.target.length)[0];
  return found ? { mount: found, rest: file.slice(found.target.replace(/\/$/, '').length) } : undefined;
}

/** Services mounting a named volume. */
function mountersOf(compose: Compose, volume: string): string[] {
  return Object.entries(compose.services)
    .filter(([, svc]) => volumesOf(svc).some((m) => m.type === 'volume' && m.source === volume))
    .map(([name]) => name);
}

function isTrue(v: string | undefined): boolean {
  return v !== undefined && v.trim().toLowerCase() === 'true';
}

function hasHealthcheck(svc: Service): boolean {
  const hc = svc.healthcheck;
  if (!isRecord(hc) || hc.disable === true) return false;
  const test = argv(hc.test);
  return test.length > 0 && test[0] !== 'NONE';
}

// ---------------------------------------------------------------------------------------------
// What each service listens on inside the network
// ---------------------------------------------------------------------------------------------

function eventstoreHttpPort(compose: Compose): number {
  const env = environmentOf(service(compose, 'eventstore'));
  // 24.x renamed HttpPort to NodePort; both are read, the new name wins.
  return toPort(env.EVENTSTORE_NODE_PORT ?? env.EVENTSTORE_HTTP_PORT ?? 2113);
}

function postgresPort(compose: Compose): number {
  return toPort(environmentOf(service(compose, 'postgres')).PGPORT ?? 5432);
}

function temporalFrontendPort(compose: Compose): number {
  return toPort(environmentOf(service(compose, 'temporal')).FRONTEND_GRPC_PORT ?? 7233);
}

function temporalUiPort(compose: Compose): number {
  return toPort(environmentOf(service(compose, 'temporal-ui')).TEMPORAL_UI_PORT ?? 8080);
}

function postgresCredentials(compose: Compose): { user: string; password: string } {
  const env = environmentOf(service(compose, 'postgres'));
  const user = env.POSTGRES_USER ?? 'postgres';
  const password = env.POSTGRES_PASSWORD;
  if (!password) throw new Error('postgres needs POSTGRES_PASSWORD');
  return { user, password };
}

/** Databases that exist after the postgres container's first start: POSTGRES_DB plus those the init scripts create. */
function postgresDatabases(compose: Compose): Set<string> {
  const svc = service(compose, 'postgres');
  const env = environmentOf(svc);
  const dbs = new Set<string>([env.POSTGRES_DB ?? env.POSTGRES_USER ?? 'postgres']);
  for (const v of volumesOf(svc)) {
    if (v.type !== 'bind' || !v.target.startsWith('/docker-entrypoint-initdb.d')) continue;
    const host = path.resolve(ROOT, v.source);
    const files = statSync(host).isDirectory() ? readdirSync(host).map((f) => path.join(host, f)) : [host];
    for (const file of files) {
      if (!file.endsWith('.sql')) continue;
      for (const m of readFileSync(file, 'utf8').matchAll(/CREATE\s+DATABASE\s+"?([A-Za-z_][A-Za-z0-9_]*)"?/gi)) dbs.add(m[1] ?? '');
    }
  }
  return dbs;
}

function hostPortOf(value: string | undefined, what: string): { host: string; port: number } {
  const m = /^([^:]+):(\d+)$/.exec(value ?? '');
  if (!m) throw new Error(`${what} must be host:port, got ${JSON.stringify(value)}`);
  return { host: m[1] ?? '', port: toPort(m[2]) };
}

// ---------------------------------------------------------------------------------------------
// The checks, run with compose's defaults and with the password overridden
// ---------------------------------------------------------------------------------------------

/** The variables compose requires (`${VAR:?...}`, no defaults): the bootstrap operator key and every password. */
const OPERATOR_API_KEY = 'compose-operator-key-0123456789abcdef';
const REQUIRED: Env = {
  OPERATOR_API_KEY,
  POSTGRES_PASSWORD: 'pg-secret_0123456789abcdef',
  ESDB_ADMIN_PASSWORD: 'esdb-admin_0123456789abcdef',
  ESDB_OPS_PASSWORD: 'esdb-ops_0123456789abcdef',
};
const REQUIRED_VARIABLES = Object.keys(REQUIRED);

const SCENARIOS: [string, Env][] = [
  ['with defaults (only the required key and passwords set)', REQUIRED],
  [
    'with other passwords, LOG_LEVEL and the access-control variables overridden',
    {
      ...REQUIRED,
      POSTGRES_PASSWORD: 'Another-pw_123',
      ESDB_ADMIN_PASSWORD: 'Another.admin-pw_456',
      ESDB_OPS_PASSWORD: 'Another ops pw @ 789',
      LOG_LEVEL: 'warn',
      RATE_LIMIT_PER_MINUTE: '120',
      METRICS_PUBLIC: 'true',
    },
  ],
];

describe('docker-compose.yml access control', () => {
  test.each(REQUIRED_VARIABLES)('refuses to start without %s, naming it', (variable) => {
    expect(() => loadCompose({ ...REQUIRED, [variable]: undefined })).toThrow(new RegExp(`${variable} must be set`));
    expect(() => loadCompose({ ...REQUIRED, [variable]: '' })).toThrow(new RegExp(`${variable} must be set`));
  });

  test('no password, key or secret has a default: each is `${VAR:?message}`', () => {
    const text = readFileSync(COMPOSE_FILE, 'utf8');
    const secretish = /PASSWORD|PASSWD|PWD|SECRET|TOKEN|_KEY\b/i;
    const interpolations = [...text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}/g)].map((m) => ({
      name: m[1] ?? '',
      rest: m[2] ?? '',
    }));
    const secrets = interpolations.filter((i) => secretish.test(i.name));
    expect(new Set(secrets.map((i) => i.name))).toEqual(new Set(REQUIRED_VARIABLES));
    for (const i of secrets) expect({ name: i.name, form: i.rest.slice(0, 2) }).toEqual({ name: i.name, form: ':?' });
    // No well-known default password written out either (EventStoreDB's changeit, the old `temporal`, `postgres`).
    for (const [name, svc] of Object.entries(loadCompose(REQUIRED).services)) {
      for (const [key, value] of Object.entries(environmentOf(svc))) {
        if (!secretish.test(key)) continue;
        expect({ name, key, fromEnvironment: Object.values(REQUIRED).includes(value) }).toEqual({ name, key, fromEnvironment: true });
      }
    }
    expect(text).not.toMatch(/changeit/i);
  });

  test('the api gets the key, the rate limit and METRICS_PUBLIC, and accepts them', () => {
    const config = loadConfig(
      environmentOf(service(loadCompose({ ...REQUIRED, RATE_LIMIT_PER_MINUTE: '120', METRICS_PUBLIC: 'true' }), 'api')),
    );
    expect(config).toMatchObject({ OPERATOR_API_KEY, RATE_LIMIT_PER_MINUTE: 120, METRICS_PUBLIC: true });
    expect(loadConfig(environmentOf(service(loadCompose(REQUIRED), 'api')))).toMatchObject({
      RATE_LIMIT_PER_MINUTE: 600,
      METRICS_PUBLIC: false,
    });
  });

  test('a key too short for the API is refused by its config loader', () => {
    expect(() => loadConfig(environmentOf(service(loadCompose({ ...REQUIRED, OPERATOR_API_KEY: 'short' }), 'api')))).toThrow(
      /OPERATOR_API_KEY/,
    );
  });
});

describe.each(SCENARIOS)('docker-compose.yml %s', (_label, shellEnv) => {
  const compose = loadCompose(shellEnv);

  test('defines every service of the stack', () => {
    for (const name of ALL_SERVICES) expect(Object.keys(compose.services)).toContain(name);
    for (const [name, svc] of Object.entries(compose.services)) {
      expect({ name, hasImageOrBuild: svc.image !== undefined || svc.build !== undefined }).toEqual({ name, hasImageOrBuild: true });
    }
  });

  test('the network boundary: only the api is published on every interface; the UIs on 127.0.0.1 only; nothing else at all', () => {
    const published = Object.entries(compose.services).flatMap(([name, svc]) => portsOf(svc).map((p) => ({ name, ...p })));
    // A port without a host IP (or 0.0.0.0 / ::) is reachable from every network the host is on.
    const everywhere = published.filter((p) => p.hostIp === undefined || ['0.0.0.0', '::', '[::]', ''].includes(p.hostIp));
    expect(everywhere.map((p) => p.name)).toEqual(['api']);
    expect(published.filter((p) => p.name !== 'api')).toEqual([
      { name: 'temporal-ui', hostIp: '127.0.0.1', published: 8080, target: temporalUiPort(compose), protocol: 'tcp' },
      { name: 'eventstore', hostIp: '127.0.0.1', published: 2113, target: eventstoreHttpPort(compose), protocol: 'tcp' },
    ]);
    // Temporal's frontend, PostgreSQL and EventStoreDB: on the internal network only, by no other road either.
    for (const name of ['temporal', 'postgres', 'temporal-admin-tools', 'eventstore-certs', 'worker', 'projections']) {
      expect({ name, ports: portsOf(service(compose, name)) }).toEqual({ name, ports: [] });
    }
    for (const [name, svc] of Object.entries(compose.services)) {
      expect({ name, networkMode: svc.network_mode ?? 'default' }).not.toEqual({ name, networkMode: 'host' });
    }
  });

  test('a comment says how to expose a UI behind an authenticating proxy', () => {
    const text = readFileSync(COMPOSE_FILE, 'utf8');
    expect(text).toMatch(/^#.*authenticating (reverse )?proxy/im);
    expect(existsSync(path.join(ROOT, 'docs/production-shape.md'))).toBe(true);
  });

  test('api publishes host port 3000 to the PORT it is configured with', () => {
    const api = service(compose, 'api');
    const { PORT } = loadConfig(environmentOf(api));
    expect(portsOf(api)).toContainEqual(expect.objectContaining({ published: 3000, target: PORT, protocol: 'tcp' }));
  });

  test('no two services publish the same host port', () => {
    const seen = new Map<string, string>();
    for (const [name, svc] of Object.entries(compose.services)) {
      for (const p of portsOf(svc)) {
        if (p.published === undefined) continue;
        const key = `${p.hostIp ?? '*'}:${p.published}/${p.protocol}`;
        expect({ key, by: seen.get(key) ?? name }).toEqual({ key, by: name });
        seen.set(key, name);
      }
    }
  });

  test("eventstore: the 24.10 docs' image, single node, no server projections (the adapter needs none), AtomPub for the UI, persistent volumes, healthcheck over TLS", () => {
    const es = service(compose, 'eventstore');
    const env = environmentOf(es);
    // The registry and name the 24.10 docs give (docs/server/quick-start/installation.md; samples/server/docker-compose.yaml).
    expect(String(es.image)).toMatch(/^docker\.eventstore\.com\/eventstore\/eventstoredb-ee:24\.10(\.\d+)?$/);
    expect(env.EVENTSTORE_CLUSTER_SIZE).toBe('1');
    // Projections off: they would write link records ($by_category, $et-…) into $all, which every scan steps over.
    expect(env.EVENTSTORE_RUN_PROJECTIONS?.toLowerCase()).toBe('none');
    expect(isTrue(env.EVENTSTORE_START_STANDARD_PROJECTIONS)).toBe(false);
    // NodePort, the 24.10 name (HttpPort is gone in 25.2).
    expect(env.EVENTSTORE_HTTP_PORT).toBeUndefined();
    expect(env.EVENTSTORE_NODE_PORT).toBe('2113');
    expect(isTrue(env.EVENTSTORE_ENABLE_ATOM_PUB_OVER_HTTP)).toBe(true);
    const targets = volumesOf(es).map((v) => v.target);
    expect(targets).toEqual(expect.arrayContaining(['/var/lib/eventstore', '/var/log/eventstore']));
    expect(hasHealthcheck(es)).toBe(true);
    const probe = argv(isRecord(es.healthcheck) ? es.healthcheck.test : undefined).join(' ');
    expect(probe).toContain(`https://localhost:${eventstoreHttpPort(compose)}/health/live`);
    // The probe verifies the server against the stack's CA (no --insecure / -k).
    expect(probe).toContain(`--cacert ${env.EVENTSTORE_TRUSTED_ROOT_CERTIFICATES_PATH}/ca.crt`);
    expect(probe).not.toMatch(/(^|\s)(-k|--insecure)(\s|$)/);
  });

  test("eventstore runs secure: TLS with the certificates job's files, admin and ops passwords from the environment", () => {
    const es = service(compose, 'eventstore');
    const env = environmentOf(es);
    expect(isTrue(env.EVENTSTORE_INSECURE)).toBe(false);
    expect(isTrue(env.EVENTSTORE_DEV)).toBe(false);
    expect(env.EVENTSTORE_DEFAULT_ADMIN_PASSWORD).toBe(shellEnv.ESDB_ADMIN_PASSWORD);
    expect(env.EVENTSTORE_DEFAULT_OPS_PASSWORD).toBe(shellEnv.ESDB_OPS_PASSWORD);
    expect(dependsOnOf(es)).toEqual(expect.objectContaining({ 'eventstore-certs': 'service_completed_successfully' }));
    // Each file EventStoreDB reads is on a volume the job writes, at the path the job writes it to.
    const job = service(compose, 'eventstore-certs');
    const script = [...argv(job.entrypoint), ...argv(job.command)].join(' ');
    const files = {
      certificate: env.EVENTSTORE_CERTIFICATE_FILE ?? '',
      key: env.EVENTSTORE_CERTIFICATE_PRIVATE_KEY_FILE ?? '',
      ca: `${env.EVENTSTORE_TRUSTED_ROOT_CERTIFICATES_PATH ?? ''}/ca.crt`,
    };
    for (const [what, file] of Object.entries(files)) {
      const onServer = mountOf(es, file);
      expect({ what, file, mounted: onServer?.mount.type }).toEqual({ what, file, mounted: 'volume' });
      const onJob = volumesOf(job).find((m) => m.type === 'volume' && m.source === onServer!.mount.source);
      expect({ what, volume: onServer!.mount.source, writtenByJob: onJob !== undefined && !onJob.readOnly }).toEqual({
        what,
        volume: onServer!.mount.source,
        writtenByJob: true,
      });
      expect(script).toContain(`${onJob!.target.replace(/\/$/, '')}${onServer!.rest}`);
    }
    // The trusted-roots folder holds the CA certificate only: never a private key.
    const caVolume = mountOf(es, files.ca)!.mount.source;
    expect(mountOf(es, files.key)!.mount.source).not.toBe(caVolume);
  });

  test("eventstore-certs: a one-shot job running EventStoreDB's certificate tool, for the name the apps connect to", () => {
    const job = service(compose, 'eventstore-certs');
    expect(String(job.image)).toMatch(/^eventstore\/es-gencert-cli:\d/);
    expect([undefined, 'no']).toContain(job.restart === undefined ? undefined : String(job.restart));
    const script = [...argv(job.entrypoint), ...argv(job.command)].join(' ');
    expect(script).toMatch(/es-gencert-cli create-ca /);
    const createNode = /es-gencert-cli create-node ([^\n;&|]*)/.exec(script)?.[1] ?? '';
    const dnsNames = /-dns-names[ =](\S+)/.exec(createNode)?.[1]?.split(',') ?? [];
    const hosts = new Set(APP_SERVICES.map((n) => new URL(loadConfig(environmentOf(service(compose, n))).ESDB_URL ?? '').hostname));
    for (const host of [...hosts, 'localhost']) expect(dnsNames).toContain(host);
    // EventStoreDB runs as uid 1000 and must read its key; nothing else should.
    expect(script).toMatch(/chown 1000:1000 \S*node\.key/);
    expect(script).toMatch(/chmod 0400 \S*node\.key/);
  });

  test('private keys stay with their owners: the CA key with the job, the node key with the job and eventstore', () => {
    const job = service(compose, 'eventstore-certs');
    const script = [...argv(job.entrypoint), ...argv(job.command)].join(' ');
    const caKeyPath = /-ca-key[ =](\S+)/.exec(script)?.[1] ?? '';
    const caKey = mountOf(job, caKeyPath);
    expect(caKey?.mount.type).toBe('volume');
    expect(mountersOf(compose, caKey!.mount.source)).toEqual(['eventstore-certs']);
    const nodeKey = mountOf(
      service(compose, 'eventstore'),
      environmentOf(service(compose, 'eventstore')).EVENTSTORE_CERTIFICATE_PRIVATE_KEY_FILE ?? '',
    );
    expect(mountersOf(compose, nodeKey!.mount.source).sort()).toEqual(['eventstore', 'eventstore-certs']);
  });

  test('postgres: credentials, database, init scripts on disk, named volume, healthcheck', () => {
    const pg = service(compose, 'postgres');
    const env = environmentOf(pg);
    expect(String(pg.image)).toMatch(/^postgres:16/);
    expect(env.POSTGRES_USER).toBeTruthy();
    expect(env.POSTGRES_PASSWORD).toBeTruthy();
    expect(env.POSTGRES_DB).toBeTruthy();
    expect(volumesOf(pg)).toContainEqual(expect.objectContaining({ type: 'volume', target: '/var/lib/postgresql/data' }));
    expect(hasHealthcheck(pg)).toBe(true);
    expect(argv(isRecord(pg.healthcheck) ? pg.healthcheck.test : undefined).join(' ')).toContain('pg_isready');
    expect(postgresDatabases(compose)).toContain('transfers');
  });

  test('temporal: auto-setup on the postgres service with its credentials', () => {
    const t = service(compose, 'temporal');
    const env = environmentOf(t);
    const pg = postgresCredentials(compose);
    expect(String(t.image)).toMatch(/^temporalio\/auto-setup:/);
    expect(env.DB).toBe('postgres12');
    expect(env.POSTGRES_SEEDS?.split(',')).toEqual(['postgres']);
    expect(compose.services[env.POSTGRES_SEEDS ?? '']).toBeDefined();
    expect(toPort(env.DB_PORT)).toBe(postgresPort(compose));
    expect(env.POSTGRES_USER).toBe(pg.user);
    expect(env.POSTGRES_PWD).toBe(pg.password);
    expect(hasHealthcheck(t)).toBe(true);
  });

  test('temporal-ui points at the temporal service and allows the API origin', () => {
    const env = environmentOf(service(compose, 'temporal-ui'));
    expect(hostPortOf(env.TEMPORAL_ADDRESS, 'temporal-ui TEMPORAL_ADDRESS')).toEqual({
      host: 'temporal',
      port: temporalFrontendPort(compose),
    });
    expect(env.TEMPORAL_CORS_ORIGINS?.split(',')).toContain('http://localhost:3000');
  });

  test('temporal-admin-tools registers every search attribute the code uses, with its type, once, in the namespace the apps use', () => {
    const job = service(compose, 'temporal-admin-tools');
    expect(String(job.image)).toMatch(/^temporalio\/admin-tools:/);
    const script = [...argv(job.entrypoint), ...argv(job.command)].join(' ');
    const namespaces = new Set(APP_SERVICES.map((n) => loadConfig(environmentOf(service(compose, n))).TEMPORAL_NAMESPACE));
    expect(namespaces.size).toBe(1);
    // The pairs it registers are exactly the dev server's (infra/temporal-dev-server.ts).
    const pairs = (environmentOf(job).SEARCH_ATTRIBUTES ?? '').split(/\s+/).filter(Boolean);
    expect(pairs.sort()).toEqual(
      Object.entries(SEARCH_ATTRIBUTES)
        .map(([name, type]) => `${name}:${type}`)
        .sort(),
    );
    expect(script).toMatch(/for pair in \$SEARCH_ATTRIBUTES;/);
    const create = /temporal operator search-attribute create([^\n;&|)]*)/.exec(script)?.[1] ?? '';
    expect(create).toMatch(/--name[ =]"\$name"/);
    expect(create).toMatch(/--type[ =]"\$type"/);
    expect(create).toMatch(new RegExp(`--namespace[ =]${[...namespaces][0]}\\b`));
    const address = /--address[ =](\S+)/.exec(create)?.[1];
    expect(hostPortOf(address, 'admin-tools --address')).toEqual({ host: 'temporal', port: temporalFrontendPort(compose) });
    expect(script).toMatch(/already exists/i);
    // A one-shot job must not be restarted, or service_completed_successfully never holds.
    expect([undefined, 'no', 'on-failure']).toContain(job.restart === undefined ? undefined : String(job.restart).split(':')[0]);
    expect(dependsOnOf(job)).toEqual(expect.objectContaining({ temporal: 'service_healthy' }));
  });

  describe.each(APP_SERVICES)('%s', (name) => {
    const svc = () => service(compose, name);
    const env = () => environmentOf(svc());

    test('passes our own config validation (loadConfig)', () => {
      expect(() => loadConfig(env())).not.toThrow();
    });

    test("uses EventStoreDB at the eventstore service, on its port, over TLS verified with the stack's CA, as admin", () => {
      const config = loadConfig(env());
      expect(config.EVENT_STORE).toBe('esdb');
      const url = new URL(config.ESDB_URL ?? '');
      expect(url.protocol).toBe('esdb:');
      expect(url.hostname).toBe('eventstore');
      expect(compose.services[url.hostname]).toBeDefined();
      expect(toPort(url.port || 2113)).toBe(eventstoreHttpPort(compose));
      // As the client library reads it.
      const parsed = parseConnectionString(config.ESDB_URL ?? '');
      expect(parsed.hosts).toEqual([{ address: 'eventstore', port: eventstoreHttpPort(compose) }]);
      expect(parsed.tls).toBe(true);
      expect(parsed.defaultCredentials).toEqual({ username: 'admin', password: shellEnv.ESDB_ADMIN_PASSWORD });
      const es = environmentOf(service(compose, 'eventstore'));
      expect(parsed.defaultCredentials?.password).toBe(es.EVENTSTORE_DEFAULT_ADMIN_PASSWORD);
      // The CA file is the CA certificate EventStoreDB trusts, mounted read-only from the same volume.
      const caFile = parsed.tlsCAFile ?? '';
      const onApp = mountOf(svc(), caFile);
      const onServer = mountOf(service(compose, 'eventstore'), `${es.EVENTSTORE_TRUSTED_ROOT_CERTIFICATES_PATH}/ca.crt`);
      expect(onApp).toEqual({ mount: expect.objectContaining({ type: 'volume', readOnly: true }), rest: '/ca.crt' });
      expect(onApp!.mount.source).toBe(onServer!.mount.source);
      // Nothing else of the certificates job reaches our processes.
      const jobVolumes = volumesOf(service(compose, 'eventstore-certs')).map((m) => m.source);
      expect(volumesOf(svc()).filter((m) => jobVolumes.includes(m.source))).toEqual([onApp!.mount]);
    });

    test('uses the transfers database on the postgres service with its credentials', () => {
      const config = loadConfig(env());
      const url = new URL(config.DATABASE_URL ?? '');
      const pg = postgresCredentials(compose);
      expect(url.hostname).toBe('postgres');
      expect(compose.services[url.hostname]).toBeDefined();
      expect(toPort(url.port || 5432)).toBe(postgresPort(compose));
      expect(decodeURIComponent(url.username)).toBe(pg.user);
      expect(decodeURIComponent(url.password)).toBe(pg.password);
      const db = decodeURIComponent(url.pathname.replace(/^\//, ''));
      expect(db).toBe('transfers');
      expect(postgresDatabases(compose)).toContain(db);
    });

    test('talks to the temporal service on its frontend port', () => {
      const config = loadConfig(env());
      expect(hostPortOf(config.TEMPORAL_ADDRESS, `${name} TEMPORAL_ADDRESS`)).toEqual({
        host: 'temporal',
        port: temporalFrontendPort(compose),
      });
      expect(config.TASK_QUEUE).toBe('transfers');
    });

    test('runs its own entry point from the image built by ./Dockerfile, restarting unless stopped', () => {
      expect(argv(svc().command)).toEqual(['node', `dist/main/${name}.js`]);
      expect(svc().build).toBeDefined();
      expect(svc().restart).toBe('unless-stopped');
    });

    test('waits for its dependencies to be usable, not just started', () => {
      const deps = dependsOnOf(svc());
      expect(deps).toEqual(expect.objectContaining({ postgres: 'service_healthy', eventstore: 'service_healthy' }));
      if (name !== 'projections') {
        expect(deps).toEqual(
          expect.objectContaining({ temporal: 'service_healthy', 'temporal-admin-tools': 'service_completed_successfully' }),
        );
      }
    });
  });

  test('every depends_on target exists, uses a known condition that can be reached, and there is no cycle', () => {
    const graph = new Map<string, string[]>();
    for (const [name, svc] of Object.entries(compose.services)) {
      const deps = dependsOnOf(svc);
      graph.set(name, Object.keys(deps));
      for (const [target, condition] of Object.entries(deps)) {
        const what = `${name} -> ${target}`;
        expect({ what, exists: compose.services[target] !== undefined }).toEqual({ what, exists: true });
        expect(['service_started', 'service_healthy', 'service_completed_successfully']).toContain(condition);
        const dep = compose.services[target] ?? {};
        if (condition === 'service_healthy') expect({ what, healthcheck: hasHealthcheck(dep) }).toEqual({ what, healthcheck: true });
        if (condition === 'service_completed_successfully') {
          expect({ what, restart: dep.restart ?? 'no' }).toEqual({ what, restart: 'no' });
        }
      }
    }
    const visiting = new Set<string>();
    const done = new Set<string>();
    const visit = (n: string, trail: string[]): void => {
      if (done.has(n)) return;
      if (visiting.has(n)) throw new Error(`depends_on cycle: ${[...trail, n].join(' -> ')}`);
      visiting.add(n);
      for (const d of graph.get(n) ?? []) visit(d, [...trail, n]);
      visiting.delete(n);
      done.add(n);
    };
    for (const n of graph.keys()) visit(n, []);
  });

  test('build contexts and Dockerfiles exist, and the target stage is defined', () => {
    const built = Object.entries(compose.services).filter(([, svc]) => svc.build !== undefined);
    expect(built.map(([n]) => n)).toEqual(expect.arrayContaining([...APP_SERVICES]));
    for (const [name, svc] of built) {
      const build = typeof svc.build === 'string' ? { context: svc.build } : (svc.build as Record<string, unknown>);
      const context = path.resolve(ROOT, String(build.context ?? '.'));
      expect({ name, context: existsSync(context) && statSync(context).isDirectory() }).toEqual({ name, context: true });
      const dockerfile = path.resolve(context, String(build.dockerfile ?? 'Dockerfile'));
      expect({ name, dockerfile: existsSync(dockerfile) }).toEqual({ name, dockerfile: true });
      if (build.target !== undefined) {
        const stages = [...readFileSync(dockerfile, 'utf8').matchAll(/^FROM\s+\S+\s+AS\s+(\S+)/gim)].map((m) => m[1]?.toLowerCase());
        expect(stages).toContain(String(build.target).toLowerCase());
      }
    }
  });

  test('named volumes are declared and bind-mount sources exist', () => {
    const declared = Object.keys(compose.volumes ?? {});
    for (const [name, svc] of Object.entries(compose.services)) {
      for (const v of volumesOf(svc)) {
        if (v.type === 'volume' && v.source)
          expect({ name, volume: v.source, declared: declared.includes(v.source) }).toEqual({ name, volume: v.source, declared: true });
        if (v.type === 'bind')
          expect({ name, bind: v.source, exists: existsSync(path.resolve(ROOT, v.source)) }).toEqual({
            name,
            bind: v.source,
            exists: true,
          });
      }
    }
  });
});

describe('interpolation (as the test reads compose)', () => {
  test('follows compose rules for defaults, $$ and missing variables', () => {
    expect(interpolate('a${X:-d}b', {}, 't')).toBe('adb');
    expect(interpolate('a${X:-d}b', { X: '' }, 't')).toBe('adb');
    expect(interpolate('a${X-d}b', { X: '' }, 't')).toBe('ab');
    expect(interpolate('$${X} $$y', {}, 't')).toBe('${X} $y');
    expect(interpolate('${X:+alt}', { X: '1' }, 't')).toBe('alt');
    expect(() => interpolate('${X}', {}, 't')).toThrow(/no default/);
    expect(() => interpolate('${X:?required}', {}, 't')).toThrow(/must be set/);
  });
});
