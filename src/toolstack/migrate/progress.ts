// Progress of a copy on a terminal: one line on stderr, rewritten in place, and
// nothing at all when stderr is not a terminal (scripts, logs).
import { formatBytes } from '../../sdk/formats/rules.js';

export interface ProgressLine {
  update(vdiUuid: string, phase: 'copy' | 'stage' | 'verify', done: number, total: number): void;
  end(): void;
}

const PHASE = { stage: 'staging', copy: 'copying', verify: 'verifying' } as const;

function human(n: number): string {
  const gib = n / 2 ** 30;
  return gib >= 1 ? `${gib.toFixed(1)} GiB` : `${(n / 2 ** 20).toFixed(0)} MiB`;
}

export function terminalProgress(stream: NodeJS.WriteStream = process.stderr): ProgressLine | undefined {
  if (!stream.isTTY) return undefined;
  let last = 0;
  let shown = false;
  return {
    update(vdi, phase, done, total) {
      const now = Date.now();
      if (now - last < 200 && done < total) return;
      last = now;
      const pct = total > 0 ? Math.min(100, Math.floor((done / total) * 100)) : 100;
      stream.write(`\r\x1b[K${PHASE[phase]} VDI ${vdi.slice(0, 8)}: ${pct}% (${human(done)} of ${total % 2 ** 20 === 0 ? formatBytes(total) : human(total)})`);
      shown = true;
    },
    end() {
      if (shown) stream.write('\r\x1b[K');
    },
  };
}
