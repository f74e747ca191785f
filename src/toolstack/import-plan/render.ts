// The plan as an operator reads it: images, proposed settings (with the rule
// and every disk's value and source), vendor keys, then the disagreements.
import type { JsonValue } from '../../sdk/image-meta/json-text.js';
import type { ImportPlan, ValueSource } from './plan.js';

function show(v: JsonValue): string {
  return JSON.stringify(v);
}

function origin(v: ValueSource): string {
  return v.source === v.image ? '' : ` (inherited from ${v.source})`;
}

function valueLines(values: ValueSource[], indent: string): string[] {
  return values.map((v) => `${indent}${v.image}: ${show(v.value)}${origin(v)}`);
}

export function renderPlan(plan: ImportPlan): string {
  const out: string[] = [];
  out.push(`Images (${plan.images.length}):`);
  for (const im of plan.images) {
    const what =
      im.from === null ? 'no machine data' : `${im.keys.length} key${im.keys.length === 1 ? '' : 's'}${im.from === im.label ? '' : `, inherited from ${im.from}`}`;
    out.push(`  ${im.label}${im.name !== undefined ? ` (${im.name})` : ''}: ${what}`);
  }
  out.push('', 'Proposed settings:');
  if (plan.settings.length === 0) out.push('  (none: no disk states a registered key)');
  for (const s of plan.settings) {
    const value =
      s.status === 'per-disk' ? 'per disk (below)' : s.status === 'conflict' ? 'NO VALUE (conflict, see below)' : s.status === 'no-rule' ? 'NO VALUE (no rule)' : s.rule === 'intersection' ? `${show(s.choice!)} (accepted by all: ${show(s.value!)})` : show(s.value!);
    out.push(`  ${s.setting} [${s.key}]: ${value}`);
    out.push(`      rule: ${s.ruleText}`);
    out.push(...valueLines(s.values, '      '));
    if (s.without.length) out.push(`      not stated by: ${s.without.join(', ')}`);
  }
  if (plan.vendor.length) {
    out.push('', 'Vendor keys (per image, not merged):');
    for (const v of plan.vendor) out.push(`  ${v.image}: ${v.key} = ${show(v.value)}${origin(v)}`);
  }
  const blocking = plan.disagreements.filter((d) => d.blocking).length;
  out.push('', `Disagreements (${plan.disagreements.length}, ${blocking} blocking):`);
  if (plan.disagreements.length === 0) out.push('  none');
  for (const d of plan.disagreements) {
    out.push(`  ${d.blocking ? 'BLOCKING' : 'note'} ${d.kind}${d.key !== null ? ` ${d.key}` : ''}: ${d.message}`);
    out.push(...valueLines(d.values, '      '));
  }
  out.push(
    '',
    plan.blocked
      ? `Plan: BLOCKED: ${blocking} disagreement${blocking === 1 ? '' : 's'} must be resolved by the operator (fix the images' machine data, or choose the setting by hand).`
      : 'Plan: OK',
  );
  return `${out.join('\n')}\n`;
}
