import fs from 'node:fs';
import path from 'node:path';

/** The project's root folder (for the architecture tests that read the source). */
export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');

/** Every `.ts` file under `folder` (relative to the project root), recursively; none when the folder does not exist. */
export function sourceFiles(folder: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    if (!fs.existsSync(dir)) return;
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.ts')) out.push(full);
    }
  };
  walk(path.join(PROJECT_ROOT, folder));
  return out;
}
