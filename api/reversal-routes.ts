import { randomUUID } from 'node:crypto';
import { Router } from 'express';
import { TransferLog } from '../application/transfer-log';
import { reversibleAmount } from '../domain/transfer-state';
import { TransferConflictError, TransferRejectedError } from '../temporal/transfer-client';
import type { ApiDeps } from './api-deps';
import { HttpProblem, problemType } from './problem';
import { rejectionProblem } from './rejection-status';
import { ReversalBody, TransferParams } from './schemas';
import { startAndAnswer, viewFromLog } from './transfers-routes';
import { parse } from './validate';

/**
 * `POST /transfers/{id}/reversal` (operators): undo a completed transfer by a new transfer that moves
 * the amount (or part of it) back from its target to its source. Never by deleting or editing a
 * record: the reversal is a saga of its own, linked both ways (`reversalOf` on it, `reversedBy` on
 * the original). The reversal's saga holds its amount on the original first (only a completed
 * transfer; never beyond what is left, also under concurrent reversals), and gives it back when it
 * moves nothing (a target without the funds: the reversal is `failed`).
 */
export function reversalRoutes(deps: ApiDeps): Router {
  const router = Router();
  const log = new TransferLog(deps.store);

  router.post('/transfers/:id/reversal', async (req, res) => {
    const { id } = parse(TransferParams, req.params, 'path');
    const body = parse(ReversalBody, req.body ?? {}, 'body');
    const original = (await log.load(id)).state;
    if (!original.request) throw new HttpProblem(404, problemType('transfer-not-found'), 'Transfer not found', `No transfer ${id}`);
    const reversalId = body.reversalId ?? randomUUID();
    if (reversalId === id)
      throw new HttpProblem(400, problemType('validation-error'), 'Invalid reversal id', 'A reversal needs an id of its own', [
        { field: 'reversalId', message: 'must differ from the transfer it reverses' },
      ]);

    // A known reversal id: the same reversal answers as it stands; anything else under that id is a conflict.
    const loaded = await log.load(reversalId);
    const existing = loaded.state;
    if (existing.request) {
      const same = existing.request.reversalOf === id && (body.amount === undefined || body.amount === existing.request.amount);
      if (!same) throw conflict(reversalId);
      // Accepted, and not finished: its saga is started if a crash came between recording the request and starting it.
      if (existing.status === 'pending') {
        await startAndAnswer(deps, log, req, res, existing.request, loaded);
        return;
      }
      res.status(200).location(`/transfers/${reversalId}`).json(viewFromLog(reversalId, existing));
      return;
    }
    if (original.status !== 'completed') {
      throw rejectionProblem(
        {
          type: 'transfer_not_completed',
          message: `Transfer ${id} is ${original.status === 'none' ? 'pending' : original.status}: only a completed transfer can be reversed`,
        },
        'id',
      );
    }
    const left = reversibleAmount(original);
    const amount = body.amount ?? left;
    if (amount <= 0 || amount > left) {
      throw rejectionProblem(
        {
          type: 'reversal_exceeds_original',
          message: `Transfer ${id} has ${left} of ${original.request.amount} left to reverse${body.amount ? `, not ${body.amount}` : ''}`,
        },
        'amount',
      );
    }
    const request = {
      transferId: reversalId,
      fromAccountId: original.request.toAccountId,
      toAccountId: original.request.fromAccountId,
      amount,
      reversalOf: id,
    };
    try {
      await startAndAnswer(deps, log, req, res, request, loaded);
    } catch (error) {
      if (error instanceof TransferConflictError) throw conflict(reversalId);
      if (error instanceof TransferRejectedError) throw rejectionProblem(error.rejection);
      throw error;
    }
  });

  return router;
}

function conflict(reversalId: string): HttpProblem {
  return new HttpProblem(
    409,
    problemType('transfer-conflict'),
    'Reversal conflict',
    `Transfer ${reversalId} already exists with a different payload`,
    [{ field: 'reversalId', message: 'was already used for another transfer or amount' }],
  );
}
