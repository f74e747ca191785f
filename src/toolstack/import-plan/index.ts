// The import planner (docs/import-plan.md): combine the machine data of a
// VM's disks into proposed settings and a list of disagreements.
export { planImport, type ImportPlan, type ImageMetaInput, type PlannedSetting, type Disagreement, type DisagreementKind, type PlannedImage, type ValueSource, type VendorValue, type SettingStatus } from './plan.js';
export { COMBINE_RULES, RULE_TEXT, ruleFor, type CombineRule, type KeyRule } from './rules.js';
export { inputFromFile, inputFromVdi, SM_CONFIG_META, SM_CONFIG_META_FROM } from './sources.js';
export { renderPlan } from './render.js';
export { metaMapToText } from './meta-map.js';
