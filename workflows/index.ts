// The workflow bundle's entry point: every workflow the worker runs.
export { transferSaga } from './transfer-saga';
export { transferReconciler } from './transfer-reconciler';
export { holdSaga } from './hold-saga';
export { transferBatchSaga } from './batch-saga';
