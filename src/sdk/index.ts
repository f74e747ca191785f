// The SDK's public entry for driver authors. Import from here:
//   import { defineDriver, defineDriverInfo, runDriver, SRError } from '<pkg>/src/sdk/index.js';
// A driver's launcher should import run.js and its own main.js directly
// instead, so sr_get_driver_info does not load the whole SDK.
export {
  CAPABILITIES,
  IMAGE_FORMATS,
  DriverInfoError,
  defineDriverInfo,
  driverInfoResponse,
  advertisedCapabilities,
  parseCapability,
  capabilityNames,
  isImageFormat,
  normaliseImageFormats,
  PREFERRED_IMAGE_FORMATS_KEY,
  type Capability,
  type CapabilityName,
  type ConfigurationKey,
  type DriverInfo,
  type DriverInfoInput,
  type DriverInfoResponse,
  type ImageFormat,
  type ImageFormatList,
} from '../driver-info.js';
export {
  defineDriver,
  defineHandlers,
  checkDriver,
  assertDriverConsistent,
  implementedCommands,
  DriverDefinitionError,
  type Driver,
  type DriverDefinition,
  type Handler,
  type Handlers,
  type HandlerContext,
  type HandlerSource,
} from './driver.js';
export { runDriver, type DriverEntry } from './run.js';
export { dispatch } from './dispatch.js';
export { CAPABILITY_RULES, capabilityProblems, type CapabilityRule } from './capabilities.js';
export * from './errors/index.js';
export { COMMANDS, COMMAND_SPECS, isCommand, type CommandName, type HandlerCommand } from './protocol/commands.js';
export * from './protocol/requests.js';
export { resultValue, ResultShapeError, type AttachResult, type ResultMap, type VdiInfo } from './protocol/responses.js';
export { DriverInfoSchema, DriverInfoResponseSchema } from './protocol/driver-info-schema.js';
export { checkMethodCall } from './protocol/envelope.js';
export * from './protocol/xmlrpc.js';
export { createLogger, redactParams, appendLog, type Logger } from './log.js';
export { acquireLock, acquireSrLock, withSrLock, srLockPath, DEFAULT_LOCK_TIMEOUT_MS, type HeldLock } from './lock.js';
export * from './xenapi/index.js';
export { env, PACKAGE_ROOT } from './env.js';
