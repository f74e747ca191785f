// Where copy journals live (one small module: sr-scan checks it on every call
// without loading the copy engine).
import { join } from 'node:path';

export function journalDir(lockDir: string): string {
  return join(lockDir, 'copies');
}
