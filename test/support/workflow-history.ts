import type { History } from '@temporalio/common/lib/proto-utils';

export interface ActivityExecution {
  activityType: string;
  /** The attempt that produced the recorded outcome (Temporal records only the last attempt's start). */
  attempt?: number;
  /** Identity of the worker that ran that attempt. */
  identity?: string;
  outcome: 'completed' | 'failed' | 'timed_out' | 'canceled' | 'pending';
}

/** Every activity the workflow scheduled, in order, with the attempt and worker of its recorded outcome. */
export function activityExecutions(history: History): ActivityExecution[] {
  const events = history.events ?? [];
  const byScheduledId = new Map<string, ActivityExecution>();
  const out: ActivityExecution[] = [];
  for (const event of events) {
    if (event.activityTaskScheduledEventAttributes) {
      const execution: ActivityExecution = { activityType: event.activityTaskScheduledEventAttributes.activityType?.name ?? '?', outcome: 'pending' };
      byScheduledId.set(String(event.eventId), execution);
      out.push(execution);
    }
    const started = event.activityTaskStartedEventAttributes;
    if (started) {
      const execution = byScheduledId.get(String(started.scheduledEventId));
      if (execution) {
        execution.attempt = started.attempt ?? undefined;
        execution.identity = started.identity ?? undefined;
      }
    }
    const settled: [string | undefined, ActivityExecution['outcome']][] = [
      [event.activityTaskCompletedEventAttributes ? String(event.activityTaskCompletedEventAttributes.scheduledEventId) : undefined, 'completed'],
      [event.activityTaskFailedEventAttributes ? String(event.activityTaskFailedEventAttributes.scheduledEventId) : undefined, 'failed'],
      [event.activityTaskTimedOutEventAttributes ? String(event.activityTaskTimedOutEventAttributes.scheduledEventId) : undefined, 'timed_out'],
      [event.activityTaskCanceledEventAttributes ? String(event.activityTaskCanceledEventAttributes.scheduledEventId) : undefined, 'canceled'],
    ];
    for (const [scheduledId, outcome] of settled) {
      const execution = scheduledId === undefined ? undefined : byScheduledId.get(scheduledId);
      if (execution) execution.outcome = outcome;
    }
  }
  return out;
}
