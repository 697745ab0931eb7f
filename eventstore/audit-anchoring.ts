import type { Logger } from '../infra/logger';
import type { HashChainedStore } from './hash-chain';
import { describeBreak } from './hash-chain';

/** How often the projections process anchors the stream heads (see startAuditAnchoring). */
export const AUDIT_ANCHOR_EVERY_MS = 10 * 60_000;

/**
 * Anchors the stream heads on a timer (eventstore/postgres/hash-chain-audit.ts): every `everyMs`, unless another
 * process anchored within the last half of that (several projections processes may run). A refused anchor means a
 * stream lost events the previous anchor recorded: logged at error level with the streams, every time, until an
 * operator looks (npm run audit:verify). Adapters without heads to anchor (EventStoreDB): nothing runs.
 */
export function startAuditAnchoring(store: HashChainedStore, logger: Logger, everyMs = AUDIT_ANCHOR_EVERY_MS): { stop(): Promise<void> } {
  const audit = store.chainAudit();
  if (!audit.anchor) return { stop: async () => undefined };
  let running: Promise<void> | undefined;
  const tick = () => {
    if (running) return;
    running = (async () => {
      try {
        const result = await audit.anchor!({ skipIfWithinMs: everyMs / 2 });
        if (result.refused) {
          logger.log({
            level: 'error',
            msg: 'audit anchor refused: stream heads lost what the previous anchor recorded; run npm run audit:verify',
            broken: result.refused.map(describeBreak),
          });
        } else if (result.anchor) {
          logger.log({
            level: 'info',
            msg: 'audit anchor',
            anchorId: result.anchor.anchorId,
            streams: result.anchor.streams,
            events: result.anchor.events,
            anchorHash: result.anchor.anchorHash,
          });
        }
      } catch (error) {
        logger.log({
          level: 'warn',
          msg: 'audit anchor failed; retried at the next interval',
          error: error instanceof Error ? error.message : String(error),
        });
      } finally {
        running = undefined;
      }
    })();
  };
  const timer = setInterval(tick, everyMs);
  timer.unref();
  const first = setTimeout(tick, Math.min(everyMs, 30_000));
  first.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      clearTimeout(first);
      await running;
    },
  };
}
