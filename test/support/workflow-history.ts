import type { History } from '@temporalio/common/lib/proto-utils';

export interface ActivityExecution {
  activityType: string;
  /** The attempt that produced the recorded outcome (Temporal records only the last attempt's start). */
  attempt?: number;
  /** Identity of the worker that ran that attempt. */
  identity?: string;
  outcome: 'completed' | 'failed' | 'timed_out' | 'canceled' | 'pending';
  /** A local activity (recorded as a marker). */
  local?: boolean;
}

interface LocalActivityMarkerData {
  activity_type?: string;
  attempt?: number;
}

function decodeJsonPayload<T>(payload: { data?: Uint8Array | null } | undefined): T | undefined {
  if (!payload?.data) return undefined;
  return JSON.parse(Buffer.from(payload.data).toString('utf8')) as T;
}

/**
 * Every activity the workflow ran, in order, with the attempt and worker of its recorded outcome:
 * remote activities (scheduled/started/closed events) and local activities (their markers; the worker
 * is the one that completed the workflow task recording the marker).
 */
export function activityExecutions(history: History): ActivityExecution[] {
  const events = history.events ?? [];
  const byScheduledId = new Map<string, ActivityExecution>();
  const identityOfTask = new Map<string, string | undefined>();
  const out: ActivityExecution[] = [];
  for (const event of events) {
    if (event.workflowTaskCompletedEventAttributes)
      identityOfTask.set(String(event.eventId), event.workflowTaskCompletedEventAttributes.identity ?? undefined);
    const marker = event.markerRecordedEventAttributes;
    if (marker?.markerName === 'core_local_activity') {
      const data = decodeJsonPayload<LocalActivityMarkerData>(marker.details?.data?.payloads?.[0] ?? undefined);
      out.push({
        activityType: data?.activity_type ?? '?',
        attempt: data?.attempt,
        identity: identityOfTask.get(String(marker.workflowTaskCompletedEventId)),
        outcome: marker.failure ? 'failed' : 'completed',
        local: true,
      });
    }
    if (event.activityTaskScheduledEventAttributes) {
      const execution: ActivityExecution = {
        activityType: event.activityTaskScheduledEventAttributes.activityType?.name ?? '?',
        outcome: 'pending',
      };
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
      [
        event.activityTaskCompletedEventAttributes ? String(event.activityTaskCompletedEventAttributes.scheduledEventId) : undefined,
        'completed',
      ],
      [event.activityTaskFailedEventAttributes ? String(event.activityTaskFailedEventAttributes.scheduledEventId) : undefined, 'failed'],
      [
        event.activityTaskTimedOutEventAttributes ? String(event.activityTaskTimedOutEventAttributes.scheduledEventId) : undefined,
        'timed_out',
      ],
      [
        event.activityTaskCanceledEventAttributes ? String(event.activityTaskCanceledEventAttributes.scheduledEventId) : undefined,
        'canceled',
      ],
    ];
    for (const [scheduledId, outcome] of settled) {
      const execution = scheduledId === undefined ? undefined : byScheduledId.get(scheduledId);
      if (execution) execution.outcome = outcome;
    }
  }
  return out;
}
