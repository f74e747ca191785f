// The progress line: only on a terminal, rewritten in place, cleared at the end.
import { expect, it } from 'vitest';
import { terminalProgress } from '../../src/toolstack/migrate/progress.js';

function fakeStream(isTTY: boolean): NodeJS.WriteStream & { text: string } {
  const s = { isTTY, text: '', write(t: string) { s.text += t; return true; } };
  return s as unknown as NodeJS.WriteStream & { text: string };
}

it('prints nothing when stderr is not a terminal', () => {
  expect(terminalProgress(fakeStream(false))).toBeUndefined();
});

it('on a terminal: phase, VDI, percent and bytes on one rewritten line, cleared at the end', () => {
  const s = fakeStream(true);
  const p = terminalProgress(s)!;
  const GiB = 1024 ** 3;
  p.update('0123abcd-0000-0000-0000-000000000000', 'copy', GiB, 4 * GiB);
  p.update('0123abcd-0000-0000-0000-000000000000', 'verify', 4 * GiB, 4 * GiB);
  p.end();
  expect(s.text).toBe('\r\x1b[Kcopying VDI 0123abcd: 25% (1.0 GiB of 4 GiB)\r\x1b[Kverifying VDI 0123abcd: 100% (4.0 GiB of 4 GiB)\r\x1b[K');
});
