export { ERROR_CODES, type ErrorCodeEntry } from './codes.js';
export { SRError, RawFault, isSRError, errorByName, errorByCode } from './sr-error.js';
export {
  COMMAND_ERROR_KEY,
  errorKeyForCommand,
  isToolFailure,
  describeToolFailure,
  faultFor,
  type ToolFailureLike,
  type FaultValue,
} from './map.js';
