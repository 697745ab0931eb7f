/** The reconciler workflow's name (shared by the workflow bundle and the schedule). */
export const TRANSFER_RECONCILER = 'transferReconciler';
