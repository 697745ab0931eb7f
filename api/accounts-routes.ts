import { accountStream } from '../domain/account-events';
import { availableOf } from '../domain/account-state';
import { randomUUID } from 'node:crypto';
import { Router, type Request, type Response } from 'express';
import type { AccountCommand } from '../domain/account-decider';
import { accountRowView, findAccount, listAccounts } from '../projections/account-balances-queries';
import { accountHistoryPage, movementView } from '../projections/account-history-queries';
import { principalOf } from './access-control';
import type { ApiDeps } from './api-deps';
import { awaitProjection } from './consistency';
import { accountScope } from '../projections/read-scope';
import { IdempotencyStore, type IdempotencyStoreOptions } from '../stores/idempotency-store';
import { accountIdForKey, idempotencyKeyOf, sendAccountWrite, type KeyedEndpoint } from './idempotent-account-writes';
import { normaliseOccurredAt, refuseFutureRecord, tooLateCheck } from './late-records';
import { HttpProblem, problemType } from './problem';
import { accountWriteField } from './rejection-status';
import {
  AccountListQuery,
  AccountParams,
  BalanceQuery,
  EmptyBody,
  HistoryQuery,
  MovementBody,
  OpenAccountBody,
  ReadQuery,
} from './schemas';
import { parse } from './validate';

function ifMatch(req: Request): bigint | undefined {
  const header = req.get('If-Match');
  if (header === undefined) return undefined;
  const match = /^(?:W\/)?"?(\d{1,19})"?$/.exec(header.trim());
  if (!match)
    throw new HttpProblem(
      400,
      problemType('validation-error'),
      'Invalid If-Match header',
      'If-Match must be the account revision, e.g. "3"',
      [{ field: 'If-Match', message: 'must be an account revision' }],
    );
  return BigInt(match[1]!);
}

export interface AccountsRoutesOptions {
  /** Leases and waits of the Idempotency-Key claims (tests shorten them). */
  idempotency?: IdempotencyStoreOptions;
}

export function accountsRoutes(deps: ApiDeps, options: AccountsRoutesOptions = {}): Router {
  const router = Router();
  const keys = new IdempotencyStore(deps.readModels, options.idempotency, (msg, error) =>
    deps.logger.log({ level: 'warn', msg, error: error instanceof Error ? error.message : String(error) }),
  );

  /**
   * An account write, with or without an Idempotency-Key: one use case (application/account-writes.ts, the order
   * of checks in docs/account-writes.md); the key only decides whether the answer is recorded and replayed.
   * `occurredAt`: a late record's business time (deposits and withdrawals; see late-records.ts).
   */
  async function write(
    req: Request,
    res: Response,
    endpoint: KeyedEndpoint,
    accountId: string,
    cmd: AccountCommand,
    request: Record<string, unknown>,
    key: string | undefined,
    amountField?: string,
    occurredAt?: string,
  ) {
    const expected = endpoint === 'open-account' ? undefined : ifMatch(req);
    const beforeWrite =
      occurredAt !== undefined &&
      (cmd.type === 'Deposit' || cmd.type === 'Withdraw') &&
      (endpoint === 'deposits' || endpoint === 'withdrawals')
        ? tooLateCheck(deps, { endpoint, accountId, amount: cmd.amount, occurredAt, idempotencyKey: key }, req, res)
        : undefined;
    await sendAccountWrite(
      deps,
      keys,
      {
        endpoint,
        accountId,
        command: cmd,
        key,
        request: endpoint === 'open-account' ? request : { ...request, ifMatch: expected },
        ifMatch: expected,
        fieldOf: (rejection) => accountWriteField(rejection, amountField),
        occurredAt,
        beforeWrite,
      },
      req,
      res,
    );
  }

  router.post('/accounts', async (req, res) => {
    const key = idempotencyKeyOf(req);
    const body = parse(OpenAccountBody, req.body, 'body');
    const accountId = key === undefined ? randomUUID() : accountIdForKey(key);
    const cmd: AccountCommand = {
      type: 'OpenAccount',
      accountId,
      ownerId: body.ownerId,
      currency: body.currency,
      initialDeposit: body.initialDeposit,
    };
    await write(req, res, 'open-account', accountId, cmd, { ...body }, key, 'initialDeposit');
  });

  /**
   * GET /accounts: accounts from the balances read model, by owner, ordered by account id, paged by a keyset cursor
   * (the last account id). A customer sees only its owner's accounts: another ownerId lists nothing, as an owner
   * without accounts does.
   */
  router.get('/accounts', async (req, res) => {
    const query = parse(AccountListQuery, req.query, 'query');
    await awaitProjection(deps, 'account-balances', query.minPosition);
    const principal = principalOf(res);
    const customer = principal?.role === 'customer';
    const own = customer ? principal?.ownerId : undefined;
    if (customer && (own === undefined || (query.ownerId !== undefined && query.ownerId !== own))) {
      res.json({ accounts: [] });
      return;
    }
    const page = await listAccounts(deps.readModels, { ownerId: own ?? query.ownerId, after: query.after, limit: query.limit });
    const last = page.rows.at(-1);
    res.json({ accounts: page.rows.map(accountRowView), ...(page.more && last ? { next: last.account_id } : {}) });
  });

  router.get('/accounts/:id', async (req, res) => {
    const { id } = parse(AccountParams, req.params, 'path');
    const query = parse(ReadQuery, req.query, 'query');
    // Held back only by parked events that concern this account (projections/read-scope.ts), never by another's.
    await awaitProjection(deps, 'account-balances', query.minPosition, accountScope(id));
    const account = await findAccount(deps.readModels, id);
    if (!account) throw new HttpProblem(404, problemType('account-not-found'), 'Account not found', `No account ${id}`);
    res.set('ETag', `"${account.revision}"`).json(accountRowView(account));
  });

  // Deposits and withdrawals: the same request (an amount, and a business time for a late record).
  for (const [endpoint, type] of [
    ['deposits', 'Deposit'],
    ['withdrawals', 'Withdraw'],
  ] as const) {
    router.post(`/accounts/:id/${endpoint}`, async (req, res) => {
      const { id } = parse(AccountParams, req.params, 'path');
      const body = parse(MovementBody, req.body, 'body');
      const occurredAt = body.occurredAt === undefined ? undefined : normaliseOccurredAt(body.occurredAt);
      if (occurredAt !== undefined) refuseFutureRecord(deps, occurredAt);
      const key = idempotencyKeyOf(req);
      await write(
        req,
        res,
        endpoint,
        id,
        { type, amount: body.amount },
        { amount: body.amount, ...(occurredAt !== undefined ? { occurredAt } : {}) },
        key,
        'amount',
        occurredAt,
      );
    });
  }

  router.post('/accounts/:id/close', async (req, res) => {
    const { id } = parse(AccountParams, req.params, 'path');
    parse(EmptyBody, req.body ?? {}, 'body');
    const key = idempotencyKeyOf(req);
    await write(req, res, 'close', id, { type: 'CloseAccount' }, {}, key);
  });

  router.get('/accounts/:id/history', async (req, res) => {
    const { id } = parse(AccountParams, req.params, 'path');
    const query = parse(HistoryQuery, req.query, 'query');
    await awaitProjection(deps, 'account-history', query.minPosition, accountScope(id));
    const page = await accountHistoryPage(deps.readModels, id, { before: query.cursor, limit: query.limit });
    res.json({
      accountId: id,
      movements: page.rows.map(movementView),
      nextCursor: page.more ? page.rows.at(-1)!.revision : null,
    });
  });

  /**
   * The audit question: the balance at a moment, folded from the stream. basis=business (default): every
   * event that had happened by then (occurredAt, late records included); basis=recorded: what the
   * system knew then (the stream as recorded up to that moment, by the store's recordedAt). `held` and `available`
   * come from the same fold: a hold placed by then reserves part of the balance (it changes `available`, never
   * `balance`) until its release, which a capture makes with the debit of the captured part.
   */
  router.get('/accounts/:id/balance', async (req, res) => {
    const { id } = parse(AccountParams, req.params, 'path');
    const { asOf, basis } = parse(BalanceQuery, req.query, 'query');
    const cutoff = Date.parse(asOf);
    const loaded = await deps.accounts.loadWithoutSnapshot(
      id,
      (e) => Date.parse(String(basis === 'recorded' ? e.recordedAt : e.metadata.occurredAt)) <= cutoff,
    );
    const exists = (await deps.store.readStream(accountStream(id), { maxCount: 1 })).length > 0;
    if (!exists) throw new HttpProblem(404, problemType('account-not-found'), 'Account not found', `No account ${id}`);
    res.json({
      accountId: id,
      asOf: new Date(cutoff).toISOString(),
      basis,
      balance: loaded.state.balance,
      held: loaded.state.held,
      available: availableOf(loaded.state),
      status: loaded.state.status === 'none' ? 'not_opened_yet' : loaded.state.status,
      revision: loaded.revision === 'no_stream' ? null : Number(loaded.revision),
    });
  });

  return router;
}
