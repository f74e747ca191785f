// Golden-argv plumbing shared by the lvm driver's fixtures (layout, provisioning,
// GC, image-meta): each step's recorded command lines, with this run's device, SR,
// uuids and loop devices replaced by stable placeholders.
import { vhdUtilPath } from '../../src/sdk/env.js';
import { recordToolCalls } from '../../src/sdk/tools/run.js';

export interface GoldenCase { name: string; argv: string[][] }

/** `<VHD_UTIL>`, `<DEV>`, `<SR>`, `<Un>` (uuids in order of first appearance), `<N>` losetup offsets, `<LOOP>`. */
export function argvNormaliser(dev: string, sr: string): (argv: string[]) => string[] {
  const seen = new Map<string, string>();
  return (argv) =>
    argv.map((a, i) =>
      ['--offset', '--sizelimit'].includes(argv[i - 1] ?? '')
        ? '<N>'
        : a
            .replaceAll(vhdUtilPath(), '<VHD_UTIL>')
            .replaceAll(dev, '<DEV>')
            .replaceAll(sr, '<SR>')
            .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, (u) => {
              if (!seen.has(u)) seen.set(u, `<U${seen.size + 1}>`);
              return seen.get(u)!;
            })
            .replace(/^\/dev\/loop\d+$/, '<LOOP>'),
    );
}

/** Runs each step in turn, recording the command lines it runs (normalised by `norm`). */
export async function recordSteps(steps: readonly [string, () => unknown][], norm: (argv: string[]) => string[]): Promise<GoldenCase[]> {
  const out: GoldenCase[] = [];
  for (const [name, run] of steps) {
    const rec = recordToolCalls();
    try {
      await run();
    } finally {
      rec.stop();
    }
    out.push({ name, argv: rec.argvs().map(norm) });
  }
  return out;
}
