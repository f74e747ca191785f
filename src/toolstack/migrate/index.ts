// Moving VDIs between SRs, with the destination image format: the checks
// (assert-can-migrate) and the copy engine, for smctl and for any toolstack.
export { checkMigration, snapshotsOf, MigrationRefused, type MigrationPlan, type MigrationProblem, type MoveMode, type MoveRequest, type PlannedCopy } from './check.js';
export { assertCanMigrate, moveVdis, recoverInterruptedCopies, type MovedVdi, type MoveOptions } from './move.js';
export { copyImage, VerifyError, type ImageEnd, type ProgressFn } from './engine.js';
export { convertIntoArgv, convertToRawArgv, compareArgv } from './argv.js';
export { terminalProgress } from './progress.js';
